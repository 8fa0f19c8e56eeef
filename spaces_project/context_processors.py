import os
import threading

from django.conf import settings
from django.middleware.csrf import CSRF_ALLOWED_CHARS, get_token
from django.utils.functional import SimpleLazyObject


def site(request):
    return {"SITE_NAME": "Spaces", "HOST_MIN_FOLLOWERS": settings.SPACES_HOST_MIN_FOLLOWERS}


def csrf(request):
    """The CSRF token that forms and htmx send, as Django's own processor gives it, but masked with
    bytes from `random_bytes` instead of one read of the system's randomness per character.

    Each read releases Python's interpreter lock, and under load a thread that lets go of it waits
    to get it back: Django's 33 reads per page cost a signed-in page about an eighth of its
    throughput (docs/benchmarks.md). Listed after Django's built-in processor, this one's
    `csrf_token` is the one templates see. A first visit, with no secret yet, goes through
    Django's `get_token`, which makes the secret and sets its cookie.
    """

    def token() -> str:
        secret = request.META.get("CSRF_COOKIE")
        if secret is None:
            return get_token(request)
        request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True  # renew the cookie, as get_token does
        return mask_csrf_secret(secret)

    return {"csrf_token": SimpleLazyObject(token)}


_CHARS = CSRF_ALLOWED_CHARS
_INDEX = {c: i for i, c in enumerate(_CHARS)}
# Bytes from here up would make the first letters of the alphabet likelier than the rest.
_UNBIASED = 256 - 256 % len(_CHARS)


def mask_csrf_secret(secret: str) -> str:
    """Django's masking (a random mask, then each secret character shifted by the mask's), with the
    mask drawn from one read of random bytes, each mapped to a character without bias."""
    n = len(_CHARS)
    mask: list[str] = []
    while len(mask) < len(secret):
        mask += [_CHARS[b % n] for b in random_bytes(len(secret) + 8) if b < _UNBIASED]
    mask = mask[: len(secret)]
    cipher = "".join(_CHARS[(_INDEX[s] + _INDEX[m]) % n] for s, m in zip(secret, mask, strict=True))
    return "".join(mask) + cipher


class _RandomBytes:
    """The system's randomness (``os.urandom``, as ``secrets`` uses), read a block at a time: a page
    takes its 40 bytes from memory, and reads (each of which lets go of the interpreter lock, see
    `csrf`) happen once per ~100 pages. Every byte is handed out once. A forked child starts with
    nothing kept, so it never hands out its parent's bytes."""

    BLOCK = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._kept, self._at = b"", 0

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._at + n > len(self._kept):
                self._kept, self._at = self._kept[self._at :] + os.urandom(max(self.BLOCK, n)), 0
            taken = self._kept[self._at : self._at + n]
            self._at += n
            return taken


random_bytes = _RandomBytes().take
