"""Which Janus Streaming server a listener watches (JANUS_RELAYS), and which relays are up.

With JANUS_RELAYS set, the Space's AudioBridge mix is RTP-forwarded to every relay
(``rooms.janus.relay_stage_ensure``) and each listener is sent to the healthy relay with
the fewest listeners. The counts are ours: a listener is counted when Janus accepted its
``watch`` and uncounted when that connection ends, in the Django cache (Redis when
REDIS_URL is set, so every daphne process adds to the same numbers).

Health is per process: a monitor task pings each relay (Janus ``info``) every
``CHECK_SECONDS``; a relay that fails ``FAILURES_TO_DOWN`` pings in a row, or whose
event long-poll breaks, is out until it answers again, and its listeners are told to
watch again (``rooms.audio.JanusHub.lost``), which sends them to another relay. With no
relay up, listeners watch JANUS_URL's own mountpoint.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable

from django.core.cache import cache

from . import janus

logger = logging.getLogger(__name__)

# A hung relay is out after at most 2 × (interval + timeout) = 2.5 s; its listeners' pages wait
# 1 s and watch again, so they hear the stage within 5 s.
CHECK_SECONDS = 0.5
CHECK_TIMEOUT = 0.75
FAILURES_TO_DOWN = 2
COUNT_KEY = "rooms.relays.listeners:{url}"


def _count_key(url: str) -> str:
    return COUNT_KEY.format(url=url)


def listener_counts(urls: list[str]) -> dict[str, int]:
    """Listeners we sent to each relay and whose connection is still open."""
    found = cache.get_many([_count_key(url) for url in urls])
    return {url: max(0, int(found.get(_count_key(url), 0))) for url in urls}


def listener_counted(*, url: str, delta: int) -> None:
    key = _count_key(url)
    cache.add(key, 0, timeout=None)
    try:
        cache.incr(key, delta)
    except ValueError:  # evicted between add and incr
        cache.set(key, max(0, delta), timeout=None)


class RelayMonitor:
    """This process's view of which relays answer; one per event loop (like JanusHub)."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.failures: dict[str, int] = {}
        self.on_down: list[Callable[[str], None]] = []
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def mark_down(self, url: str) -> None:
        if url in self.down:
            return
        logger.warning("Janus relay %s stopped answering; moving its listeners", url)
        self.down.add(url)
        for callback in list(self.on_down):
            callback(url)

    async def check(self, url: str) -> None:
        try:
            await asyncio.to_thread(janus.server_info, url=url, timeout=CHECK_TIMEOUT)
        except janus.JanusError:
            self.failures[url] = self.failures.get(url, 0) + 1
            if self.failures[url] >= FAILURES_TO_DOWN:
                self.mark_down(url)
            return
        self.failures[url] = 0
        if url in self.down:
            logger.info("Janus relay %s answers again", url)
            self.down.discard(url)

    async def _run(self) -> None:
        while True:
            urls = janus.relay_urls()
            if urls:
                await asyncio.gather(*(self.check(url) for url in urls))
            await asyncio.sleep(CHECK_SECONDS)


_monitors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RelayMonitor] = weakref.WeakKeyDictionary()


def relay_monitor() -> RelayMonitor:
    loop = asyncio.get_running_loop()
    monitor = _monitors.get(loop)
    if monitor is None:
        monitor = _monitors[loop] = RelayMonitor()
    monitor.start()
    return monitor


def choose(urls: list[str], *, down: set[str], counts: dict[str, int]) -> str | None:
    """The relay with the fewest listeners among those up (the first listed on a tie), or None."""
    up = [url for url in urls if url not in down]
    if not up:
        return None
    return min(up, key=lambda url: (counts.get(url, 0), up.index(url)))


async def relay_for_listener() -> str | None:
    """The relay URL a new listener should watch, or None for JANUS_URL's own mountpoint."""
    urls = janus.relay_urls()
    if not urls:
        return None
    monitor = relay_monitor()
    counts = await asyncio.to_thread(listener_counts, urls)
    return choose(urls, down=monitor.down, counts=counts)
