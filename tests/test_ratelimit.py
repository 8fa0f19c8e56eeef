"""accounts/ratelimit.py: the one limiter, in both its forms."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from accounts.ratelimit import FrameLimiter, Limit, RateLimited, TokenBucket, hit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_token_bucket_allows_its_burst_then_refills_evenly():
    clock = Clock()
    bucket = TokenBucket(Limit(3, 3), clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now = 1.0  # one token back per second
    assert [bucket.take(), bucket.take()] == [True, False]


def test_frame_types_sharing_a_bucket_share_its_tokens_and_others_have_their_own():
    limiter = FrameLimiter({"default": Limit(2, 60), "hand": Limit(2, 60)}, {"up": "hand", "down": "hand"})
    limiter.check("up")
    limiter.check("down")
    with pytest.raises(RateLimited):
        limiter.check("up")
    for kind in ("a", "b"):  # both under "default": two tokens each
        limiter.check(kind)
        limiter.check(kind)
    with pytest.raises(RateLimited):
        limiter.check("a")


def test_scoped_buckets_are_per_scope():
    limiter = FrameLimiter({"signal_to": Limit(1, 60), "default": Limit(1, 60)})
    limiter.check("signal_to", scope="1")
    limiter.check("signal_to", scope="2")
    with pytest.raises(RateLimited):
        limiter.check("signal_to", scope="1")


def test_the_shared_count_refuses_past_its_limit_per_key():
    cache.clear()
    for _ in range(3):
        hit("test:k", Limit(3, 60), "slow down")
    with pytest.raises(RateLimited, match="slow down") as refused:
        hit("test:k", Limit(3, 60), "slow down")
    assert refused.value.code == "rate_limited"
    hit("test:other", Limit(3, 60), "slow down")
