"""The one rate limiter. Every app uses it (accounts is the lowest layer).

Two kinds of count, one refusal (`RateLimited`):

- `hit(key, limit)`: a fixed window counted in Django's cache, shared by every process (Redis in
  production, per process on the embedded locmem cache). For things that must hold across sockets
  and workers: reports one person files, reactions one person sends in one Space.
- `FrameLimiter`: token buckets (`TokenBucket`) kept by one websocket, one bucket per kind of
  frame. Every frame of a socket arrives at the same process, so the count needs no shared store,
  and a frame costs no round trip to Redis (ICE candidates and speaking reports come in bursts). A
  person who reconnects to start afresh pays for a new handshake, entry checks and a snapshot each
  time; what one socket can cost the room is what the buckets bound. The captions uplink charges
  its bucket in seconds of audio rather than in frames (rooms.captions.frames.FloodLimiter).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache
from django.core.exceptions import PermissionDenied


class RateLimited(PermissionDenied):
    """Too many of something in a short time. The message says what to do, for people."""

    code = "rate_limited"

    def __init__(self, message: str = "You're doing that too often. Wait a moment and try again.") -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Limit:
    """`count` uses per `seconds`. For a token bucket: a burst of `count`, refilled evenly over
    `seconds`."""

    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds


def hit(key: str, limit: Limit, message: str) -> None:
    """Count one use of `key` in the current window of `limit.seconds`; past `limit.count`, refuse."""
    window = max(1, int(limit.seconds))
    key = f"ratelimit:{key}:{int(time.time() // window)}"
    cache.add(key, 0, timeout=window * 2)
    try:
        used = cache.incr(key)
    except ValueError:  # the key expired between add() and incr()
        cache.set(key, 1, timeout=window * 2)
        used = 1
    if used > limit.count:
        raise RateLimited(message)


class TokenBucket:
    def __init__(self, limit: Limit, *, clock=time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.tokens = float(limit.count)
        self.updated = clock()

    def full(self) -> bool:
        return self.tokens + (self.clock() - self.updated) * self.limit.per_second >= self.limit.count

    def take(self, cost: float = 1) -> bool:
        """Take `cost` tokens (one frame, or the seconds of audio a frame holds) if there are."""
        now = self.clock()
        self.tokens = min(self.limit.count, self.tokens + (now - self.updated) * self.limit.per_second)
        self.updated = now
        if self.tokens + 1e-9 >= cost:
            self.tokens -= cost
            return True
        return False


# Scoped buckets (one per addressee) are forgotten once refilled, past this many.
MAX_BUCKETS = 256


class FrameLimiter:
    """One socket's buckets. `limits` maps a bucket name to its Limit; `buckets` maps a frame type
    to its bucket name (frame types that share a budget, such as hand_raise and hand_lower, name the
    same bucket); other types have a bucket each, sized by `limits[kind]` or else `limits["default"]`."""

    def __init__(self, limits: dict[str, Limit], buckets: dict[str, str] | None = None) -> None:
        self.limits = limits
        self.buckets = buckets or {}
        self._state: dict[str, TokenBucket] = {}

    def check(self, kind: str, *, scope: str = "") -> None:
        """Take one token for a frame of `kind` (and `scope`, e.g. its addressee); RateLimited if none."""
        name = self.buckets.get(kind, kind if kind in self.limits else "default")
        # Types under "default" share its numbers, not its tokens: each has a bucket of its own.
        bucket_key = f"{kind if name == 'default' else name}:{scope}"
        bucket = self._state.get(bucket_key)
        if bucket is None:
            if len(self._state) >= MAX_BUCKETS:
                self._forget_idle()
            bucket = self._state[bucket_key] = TokenBucket(self.limits[name])
        if not bucket.take():
            raise RateLimited(f"You're sending {kind} messages too fast. Slow down and try again soon.")

    def _forget_idle(self) -> None:
        # A bucket that has refilled is the same as a new one, so forgetting it changes nothing.
        for key, bucket in list(self._state.items()):
            if bucket.full():
                del self._state[key]
