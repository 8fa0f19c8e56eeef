"""Django's cache on Redis draws from one connection pool per process, however many websockets
are open (spaces_project/redis_pool.py)."""

from __future__ import annotations

import asyncio
import contextvars
import os

import pytest
import redis
from django.core.cache import cache

pytestmark = pytest.mark.redis


def redis_clients() -> int:
    return redis.Redis.from_url(os.environ["REDIS_URL"]).info("clients")["connected_clients"]


async def test_two_hundred_async_contexts_do_not_open_two_hundred_redis_connections():
    """Each websocket consumer is its own asyncio context, and Django keeps a cache object per
    context: without the shared pool each of them opened (and kept) a connection of its own."""
    before = await asyncio.to_thread(redis_clients)

    async def one_socket(i: int) -> None:
        await cache.aset(f"pool-test-{i}", i, 30)
        assert await cache.aget(f"pool-test-{i}") == i

    # Each in a fresh context, as daphne starts each connection: nothing of this test's own
    # context (where the cache object may already exist) is inherited.
    for _ in range(2):
        await asyncio.gather(
            *(asyncio.create_task(one_socket(i), context=contextvars.Context()) for i in range(200))
        )
    assert await asyncio.to_thread(redis_clients) - before <= 20
