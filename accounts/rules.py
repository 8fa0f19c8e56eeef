"""Product rules of accounts (DESIGN.md), in one place.

The hosting threshold is also a setting (`SPACES_HOST_MIN_FOLLOWERS`, from the environment), since
a self-hoster with a small community will want it lower; this is its default.
"""

# Followers an account needs before it may host (staff can grant hosting early).
HOST_MIN_FOLLOWERS = 600

# Avatars: the largest upload accepted, and the square sizes (px) kept of it.
AVATAR_MAX_BYTES = 5 * 1024 * 1024
AVATAR_SIZES = (256, 64)

# A date of birth further back than this many years is taken for a typo.
OLDEST_AGE_YEARS = 120
