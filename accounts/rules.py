"""Product rules of accounts (DESIGN.md), in one place.

The hosting threshold is also a setting (`SPACES_HOST_MIN_FOLLOWERS`, from the environment), since
a self-hoster with a small community will want it lower; this is its default.
"""

# Followers an account needs before it may host (staff can grant hosting early).
HOST_MIN_FOLLOWERS = 600

# Avatars: the largest upload accepted, and the square sizes (px) kept of it.
AVATAR_MAX_BYTES = 5 * 1024 * 1024
# A picture is decoded only if its header says at most this many pixels: 12 MP is ~48 MB as RGBA,
# which keeps one decode (with its working copies) under ~100 MB.
AVATAR_MAX_PIXELS = 12_000_000
AVATAR_SIZES = (256, 64)

# A date of birth further back than this many years is taken for a typo.
OLDEST_AGE_YEARS = 120

# Search (/search): results of each kind shown, the longest query read, and how alike a word must
# be to count as a typo of the query on PostgreSQL (pg_trgm word similarity, 0 to 1): one wrong or
# missing letter in a word of five letters or more stays above it, two swapped letters in one of
# six or more too, while a word that only shares the query's first three letters falls below.
SEARCH_RESULTS = 20
SEARCH_QUERY_MAX_CHARS = 80
# Shorter queries match the start of a handle or title only (they hold no trigram to look up).
SEARCH_SUBSTRING_MIN_CHARS = 3
SEARCH_TYPO_SIMILARITY = 0.4

# "Who to follow" on home: how many people it suggests.
WHO_TO_FOLLOW_SHOWN = 5
