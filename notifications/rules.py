"""Product rules of notifications (DESIGN.md), in one place."""

# A delivery that failed this many times is given up (and logged).
MAX_ATTEMPTS = 5

# One-click links in emails (remove reminder, stop emails) stop working after this many days.
LINK_MAX_AGE_DAYS = 60
