"""Product rules of notifications (DESIGN.md), in one place."""

from accounts.ratelimit import Limit

# A delivery that failed this many times is given up (and logged).
MAX_ATTEMPTS = 5

# One-click links in emails (remove reminder, stop emails) stop working after this many days.
LINK_MAX_AGE_DAYS = 60

# Frames one socket may send on /ws/notifications/ (only `sync` is understood): a burst of `count`,
# refilled evenly over `seconds`; past it, a `rate_limited` error. docs/protocol.md lists it.
FRAME_LIMITS = {"any": Limit(20, 10), "default": Limit(10, 10)}
# Largest frame the notifications socket reads.
MAX_FRAME_CHARS = 1024
