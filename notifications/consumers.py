"""`/ws/notifications/`: one person's new notifications and unread count, live.

Server → client messages (the whole schema):
  {"type": "unread", "count": int}                       on connect, and after "mark read"
  {"type": "notification", "id": int, "kind": str, "title": str, "body": str, "url": str,
   "unread": int}                                         when a notification is sent to this person
  {"type": "error", "code": str, "message": str}         a frame was refused (bad_json, too_large,
                                                          unknown_type, rate_limited); the socket stays

Client → server: {"type": "sync"} only, answered with "unread".

Workers publish to the person's group (`notifications.outbox.push`). With the in-memory channel
layer of the embedded default, workers run in other processes and cannot reach this one, so the
consumer instead looks for new rows every few seconds; the database is the truth either way.
"""

from __future__ import annotations

import asyncio
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import InMemoryChannelLayer
from django.core.cache import cache

from accounts.ratelimit import FrameLimiter, RateLimited

from . import rules
from .groups import user_group
from .models import Notification
from .selectors import ONLINE_SECONDS, online_key, unread_count

# Embedded default only: how often an open bell looks for rows a worker wrote (a go-live notice
# shows within about this long). One small indexed query per open page.
POLL_SECONDS = 1


class FrameRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_frame(text: str | None) -> str:
    """The type of one client frame, or FrameRefused."""
    if text is None:
        raise FrameRefused("bad_json", "Send JSON text frames, not binary ones.")
    if len(text) > rules.MAX_FRAME_CHARS:
        raise FrameRefused("too_large", f"Frames are limited to {rules.MAX_FRAME_CHARS} characters.")
    try:
        content = json.loads(text)
        json.dumps(content, ensure_ascii=False).encode()  # no lone surrogates
    except (ValueError, RecursionError):
        raise FrameRefused("bad_json", "Each frame must be a JSON object in valid Unicode text.")
    if not isinstance(content, dict):
        raise FrameRefused("bad_json", "Each frame must be a JSON object with a type.")
    if content.get("type") != "sync":
        raise FrameRefused("unknown_type", "The only message this socket understands is sync.")
    return "sync"


async def checked_frame(consumer, text: str | None) -> str | None:
    """The type of one client frame after `consumer.limiter`'s checks; None once a refused frame
    has been answered with an error frame (the socket stays open)."""
    try:
        consumer.limiter.check("any")
        kind = parse_frame(text)
        consumer.limiter.check(kind)
    except FrameRefused as exc:
        await consumer.send_json({"type": "error", "code": exc.code, "message": exc.message})
        return None
    except RateLimited as exc:
        await consumer.send_json({"type": "error", "code": "rate_limited", "message": exc.message})
        return None
    return kind


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user = user
        self.limiter = FrameLimiter(rules.FRAME_LIMITS)
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        # Marked before the socket opens: pushes go only to people marked online (outbox.push).
        await cache.aset(online_key(user.pk), 1, ONLINE_SECONDS)
        await self.accept()
        self.last_id = await self._latest_id()
        await self.send_json({"type": "unread", "count": await self._unread()})
        self.poller = None
        if isinstance(self.channel_layer, InMemoryChannelLayer):
            self.poller = asyncio.create_task(self._poll())
        self.marker = asyncio.create_task(self._mark_online())

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if getattr(self, "poller", None):
            self.poller.cancel()
        if getattr(self, "marker", None):
            self.marker.cancel()

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # Clients only ask for a fresh count (after reading the list in another tab). Anything else
        # is answered with an error frame; the socket stays open.
        if await checked_frame(self, text_data) is None:
            return
        await self.send_json({"type": "unread", "count": await self._unread()})

    async def notification_new(self, event):
        note = event["notification"]
        self.last_id = max(self.last_id, note["id"])
        unread = event.get("unread")
        if unread is None:
            unread = await self._unread()
        await self.send_json({"type": "notification", **note, "unread": unread})

    async def user_event(self, message):
        """A Space page's message to the same person (notifications.groups): not for the bell."""

    async def _mark_online(self):
        """Keep this person marked online while the socket is open (notifications.selectors)."""
        while True:
            await asyncio.sleep(ONLINE_SECONDS / 3)
            await cache.aset(online_key(self.user.pk), 1, ONLINE_SECONDS)

    async def _poll(self):
        while True:
            await asyncio.sleep(POLL_SECONDS)
            for note in await self._newer_than(self.last_id):
                await self.notification_new({"notification": note})

    @database_sync_to_async
    def _unread(self) -> int:
        return unread_count(user=self.user)

    @database_sync_to_async
    def _latest_id(self) -> int:
        return (
            Notification.objects.filter(user=self.user).order_by("-pk").values_list("pk", flat=True).first()
            or 0
        )

    @database_sync_to_async
    def _newer_than(self, last_id: int) -> list[dict]:
        return list(
            Notification.objects.filter(user=self.user, pk__gt=last_id)
            .order_by("pk")
            .values("id", "kind", "title", "body", "url")[:20]
        )
