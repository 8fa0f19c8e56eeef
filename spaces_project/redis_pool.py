"""One Redis connection pool per process for Django's cache (`CACHES` OPTIONS `pool_class`).

Django keeps a cache object per thread and per asyncio context, and its Redis backend gives each
object a pool of its own. Under daphne every websocket runs in its own context, so each open socket
held a Redis connection of its own, and each socket that closed left its connection to the garbage
collector. A 30-minute soak with 500 listeners reconnecting every 30 s reached Redis's 10,000-client
limit, and joins then failed with 500s. With this class every cache object in the process draws
from one pool per server. redis-py's pool is thread-safe and starts over in a forked child (Celery's
prefork workers).
"""

from __future__ import annotations

import threading

import redis


class SharedConnectionPool(redis.ConnectionPool):
    _shared: dict[tuple, redis.ConnectionPool] = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs) -> redis.ConnectionPool:
        key = (url, tuple(sorted((name, repr(value)) for name, value in kwargs.items())))
        with cls._lock:
            pool = cls._shared.get(key)
            if pool is None:
                pool = cls._shared[key] = super().from_url(url, **kwargs)
        return pool
