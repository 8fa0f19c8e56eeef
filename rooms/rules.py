"""Product rules of Spaces (DESIGN.md), in one place."""

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

# A profile lists its person's upcoming Spaces and this many of their most recent past ones.
PROFILE_PAST_SHOWN = 10
