"""This process's presence heartbeat.

Connection rows are counted only while fresh (``seen_at`` within SPACES_PRESENCE_STALE_SECONDS).
While a process has sockets open it refreshes all of its own rows in one UPDATE every
SPACES_PRESENCE_HEARTBEAT_SECONDS and runs the presence sweep, so stale sockets of a process that
died are cleared and a Space whose host is gone ends even where Celery beat is not running.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from channels.db import database_sync_to_async
from django.conf import settings

from . import services
from .events import PROCESS_ID, local_space_ids

logger = logging.getLogger(__name__)

_beats: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task] = weakref.WeakKeyDictionary()


def ensure_heartbeat() -> None:
    loop = asyncio.get_running_loop()
    task = _beats.get(loop)
    if task is None or task.done():
        _beats[loop] = loop.create_task(_beat())


async def _beat() -> None:
    while True:
        await asyncio.sleep(settings.SPACES_PRESENCE_HEARTBEAT_SECONDS)
        if not local_space_ids():
            return  # no sockets here: the next connection starts a new heartbeat
        try:
            await database_sync_to_async(services.connection_heartbeat)(process=PROCESS_ID)
            await database_sync_to_async(services.presence_sweep)()
        except Exception:  # a database hiccup must not stop the heartbeat for good
            logger.exception("presence heartbeat failed")
