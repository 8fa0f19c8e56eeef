"""The captions uplink (`/ws/spaces/<id>/captions/`): a stage member's microphone as PCM.

A separate socket from the Space's own, so audio frames never queue behind (or in front of) stage
actions. Entry follows rooms/access.py like every door; then each binary frame is checked, cheapest
first: its shape (rooms/captions/frames.py), whether this person may be captioned now (on stage,
unmuted, captions on — from the database, re-read whenever the Space says something changed), and
the flood limit. Only then is it queued to the recognition pool, which never blocks. Refusals are
`error` frames, at most one a second per code, so a client that keeps sending is not answered
frame for frame. See docs/protocol.md, "The captions uplink".
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from rooms import protocol
from rooms.access import entry_refusal
from rooms.events import SpaceHub, hub_for
from rooms.models import Space

from .engine import SAMPLE_RATE
from .frames import ACCEPTED_FRAME_MS, RECOMMENDED_FRAME_MS, FloodLimiter, FrameError, validate_frame
from .selectors import Refusal, caption_sender_refusal
from .service import caption_pool

logger = logging.getLogger(__name__)

RECHECK_SECONDS = 10.0  # besides the events that say so, re-read the rules this often
ERROR_EVERY_SECONDS = 1.0
CLOSE_REPLACED = protocol.CLOSE_CAPTIONS_REPLACED

# One uplink per person per Space in this process: two tabs must not interleave one stream.
_uplinks: dict[tuple[int, int], CaptionsConsumer] = {}


def _entry(space_id: int, user) -> tuple[Space | None, str | None, int]:
    space = Space.objects.filter(pk=space_id).first()
    if space is None:
        return None, "There's no Space here. Check the link.", protocol.CLOSE_NOT_FOUND
    if space.state in (Space.State.ENDED, Space.State.CANCELLED):
        return None, "This Space has ended.", protocol.CLOSE_ENDED
    refusal = entry_refusal(space=space, user=user)
    if refusal:
        return None, refusal, protocol.CLOSE_REFUSED
    return space, None, 0


class CaptionsConsumer(AsyncWebsocketConsumer):
    hub: SpaceHub | None = None
    finished = False
    refusal: Refusal | None = None
    status_sent = False
    timer: asyncio.Task | None = None

    async def connect(self) -> None:
        self.space_id = int(self.scope["url_route"]["kwargs"]["space_id"])
        self.user = self.scope.get("user")
        self.limiter = FloodLimiter()
        self.last_error: dict[str, float] = {}
        self.streaming = False
        self.recheck_task: asyncio.Task | None = None
        self.recheck_again = False
        await self.accept()
        if self.user is None or not self.user.is_authenticated:
            await self._refuse(protocol.CLOSE_NOT_SIGNED_IN, "Sign in to join this Space.")
            return
        space, message, code = await database_sync_to_async(_entry)(self.space_id, self.user)
        if space is None:
            await self._refuse(code, message)
            return
        # Listen to the Space before reading the rules, so no change after the read is missed.
        self.hub = hub_for(self.space_id)
        await self.hub.add(self)
        previous = _uplinks.get(self.key)
        _uplinks[self.key] = self
        if previous is not None:
            await previous._refuse(CLOSE_REPLACED, "Captions moved to your newer tab.")
        await self._recheck()
        self.timer = asyncio.get_running_loop().create_task(self._recheck_periodically())

    @property
    def key(self) -> tuple[int, int]:
        return (self.space_id, self.user.pk)

    async def disconnect(self, code: int) -> None:
        self.finished = True
        self._end_stream()
        if self.hub is not None and _uplinks.get(self.key) is self:
            del _uplinks[self.key]
        for task in (self.timer, self.recheck_task):
            if task is not None:
                task.cancel()
        if self.hub is not None:
            await self.hub.discard(self)
            self.hub = None

    async def _refuse(self, code: int, message: str) -> None:
        await self._send({"type": "error", "code": "entry_refused", "message": message})
        await self._close(code, message)

    async def _close(self, code: int, reason: str = "") -> None:
        if self.finished:
            return
        self.finished = True
        self._end_stream()
        await self.close(code=code, reason=reason[:120] or None)

    async def _send(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event, ensure_ascii=False, separators=(",", ":")))

    # --- the rules, from the database -------------------------------------------------------

    async def _recheck(self) -> None:
        refusal = await database_sync_to_async(caption_sender_refusal)(
            space_id=self.space_id, user_id=self.user.pk
        )
        if self.finished:
            return
        changed = refusal != self.refusal or not self.status_sent
        self.refusal = refusal
        if refusal is not None:
            self._end_stream()
        if refusal is None:
            # Load the recognisers while the browser sets up its microphone, not on its first words.
            await caption_pool().start()
        if changed:
            self.status_sent = True
            self.last_error.clear()  # a new state: its first refusal is worth saying
            status = {"type": "captions_status", "sending": refusal is None}
            if refusal is None:
                status.update(
                    sample_rate=SAMPLE_RATE,
                    frame_ms=list(ACCEPTED_FRAME_MS),
                    recommended_frame_ms=RECOMMENDED_FRAME_MS,
                )
            else:
                status.update(code=refusal.code, message=refusal.message)
            await self._send(status)

    def _recheck_soon(self) -> None:
        # Never wait for the database inside the hub's delivery loop: it serves every socket.
        if self.recheck_task is not None and not self.recheck_task.done():
            self.recheck_again = True
            return
        self.recheck_task = asyncio.get_running_loop().create_task(self._recheck_loop())

    async def _recheck_loop(self) -> None:
        while True:
            self.recheck_again = False
            try:
                await self._recheck()
            except Exception:
                logger.exception("captions rule check failed in Space %s", self.space_id)
            if not self.recheck_again or self.finished:
                return

    async def _recheck_periodically(self) -> None:
        while not self.finished:
            await asyncio.sleep(RECHECK_SECONDS)
            self._recheck_soon()

    # --- from the Space (this process's hub) ------------------------------------------------

    async def hub_deliver(self, event: dict[str, Any], text: str) -> None:
        kind = event.get("type")
        me = self.user.pk
        if (
            kind == "captions_toggled"
            or (kind == "muted" and event.get("user_id") == me)
            or (kind == "role_changed" and event["participant"]["user_id"] == me)
            or (kind == "participant_left" and event.get("user_id") == me)
        ):
            self._recheck_soon()

    async def hub_close(self, code: int) -> None:
        await self._close(code)

    # --- from the browser --------------------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.receive":
            # Audio frames touch no database: skip Channels' per-message hop to the one sync
            # thread (close_old_connections), which the room's own actions need (10 frames/s each).
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.finished or self.hub is None:
            return
        try:
            pcm = validate_frame(bytes_data if bytes_data is not None else text_data)
            if self.refusal is not None:
                await self._error(self.refusal.code, self.refusal.message)
                return
            self.limiter.check(pcm)
        except FrameError as exc:
            await self._error(exc.code, exc.message)
            return
        self.streaming = True
        await caption_pool().submit(self.space_id, self.user.pk, pcm)

    def _end_stream(self) -> None:
        # The utterance in progress becomes a final; the next audio starts a new stream.
        if self.streaming:
            self.streaming = False
            caption_pool().close_speaker(self.space_id, self.user.pk)

    async def _error(self, code: str, message: str) -> None:
        now = time.monotonic()
        if now - self.last_error.get(code, float("-inf")) < ERROR_EVERY_SECONDS:
            return
        self.last_error[code] = now
        await self._send({"type": "error", "code": code, "message": message})
