"""This process's presence heartbeat.

Connection rows are counted only while fresh (``seen_at`` within SPACES_PRESENCE_STALE_SECONDS).
While a process has sockets open it refreshes the rows of the sockets it holds every
SPACES_PRESENCE_HEARTBEAT_SECONDS (a row whose socket is gone without its goodbye, say one
cancelled by the server mid-join, is left to go stale) and runs the presence sweep, so stale
sockets of a process that died are cleared and a Space whose host is gone ends even where Celery
beat is not running.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from channels.db import database_sync_to_async
from django.conf import settings

from . import services
from .events import PROCESS_ID, local_channel_names, local_space_ids

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
            await database_sync_to_async(services.connection_heartbeat)(
                process=PROCESS_ID, channel_names=local_channel_names()
            )
            await database_sync_to_async(services.presence_sweep)()
        except Exception:  # a database hiccup must not stop the heartbeat for good
            logger.exception("presence heartbeat failed")
