"""Product rules of Spaces (DESIGN.md), in one place."""

from accounts.ratelimit import Limit

# The stage: 1 host + up to 2 co-hosts + up to 10 speakers; listeners unlimited.
COHOSTS_MAX = 2
SPEAKERS_MAX = 10
STAGE_MAX = 1 + COHOSTS_MAX + SPEAKERS_MAX

# Topics per Space.
TOPICS_MAX = 3

# Scheduling: how far ahead, and how many upcoming Spaces one host may have.
SCHEDULE_MAX_DAYS = 30
SCHEDULE_MAX_UPCOMING = 10

# Speech kept for the improved transcript is deleted as soon as it has been re-decoded; whatever
# that missed (a re-decode that never ran, a file whose caption line was never written) is deleted
# by the hourly sweep once its Space has been over, or the file has existed, this long.
CAPTION_AUDIO_KEEP_HOURS = 24

# The host hears this many minutes before their scheduled Space is due, and again at the start time.
HOST_HEADS_UP_MINUTES = 30

# Frames one socket may send on /ws/spaces/<id>/ (accounts.ratelimit.FrameLimiter): a burst of
# `count`, refilled evenly over `seconds`. Past it, the frame is answered with a `rate_limited`
# error and nothing is relayed. docs/protocol.md has the same table for people.
FRAME_LIMITS = {
    "any": Limit(400, 10),  # every frame, valid or not, before it is even parsed
    "default": Limit(20, 10),  # host and co-host actions, captions_view, leave, space_end…
    "hand": Limit(6, 30),  # hand_raise and hand_lower together
    "mute": Limit(10, 10),  # mute_self and unmute_self together
    "reaction": Limit(10, 5),  # and SPACES_REACTIONS_PER_WINDOW per person across sockets
    "speaking": Limit(20, 5),  # the browser reports at most every 300 ms
    "signal": Limit(300, 10),  # all of one socket's WebRTC offers, answers and ICE candidates
    "signal_to": Limit(60, 10),  # … and to any one person
    "resync": Limit(5, 10),
    "ping": Limit(10, 10),
}
FRAME_BUCKETS = {"hand_raise": "hand", "hand_lower": "hand", "mute_self": "mute", "unmute_self": "mute"}

# A profile lists its person's upcoming Spaces and this many of their most recent past ones.
PROFILE_PAST_SHOWN = 10

# Go-live notices are written and sent in chunks of this many followers, one Celery task each.
GOLIVE_CHUNK = 500
