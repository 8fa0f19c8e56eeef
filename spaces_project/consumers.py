"""`/ws/home/`: the home page's live bar and "Live now", kept current without a reload.

Server → client (the whole schema; docs/protocol.md):
  {"type": "home", "live_bar": str, "live_now": str}   the two sections' HTML, as the page renders
                                                       them: on connect, on `sync`, and at most once
                                                       a second while Spaces start, end or change
                                                       stage, and at most once per
                                                       SPACES_HOME_COUNT_SECONDS for listener
                                                       counts alone
  {"type": "error", "code": str, "message": str}       a frame was refused (bad_json, too_large,
                                                       unknown_type, rate_limited); the socket stays
Client → server: {"type": "sync"} only, answered with "home".

Rooms' services tell the "home" group after commit (`rooms.events.home_publish`); each socket
coalesces those hints and re-reads through the same cached selectors as the page. The home page
belongs to no app (spaces_project.views.home), so neither does its socket.
"""

from __future__ import annotations

import asyncio
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.template.loader import render_to_string

from accounts.ratelimit import FrameLimiter
from notifications import rules as notification_rules
from notifications.consumers import checked_frame
from rooms.events import HOME_GROUP
from rooms.selectors import home_sections

# A page hears about changes at most this often, however many Spaces start, end or fill up.
HOME_INTERVAL = 1.0


def home_frame(*, viewer) -> dict:
    sections = home_sections(viewer=viewer)
    return {
        "type": "home",
        "live_bar": render_to_string("rooms/_live_bar.html", sections),
        "live_now": str(sections["discover_html"]),
    }


class HomeConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.viewer = self.scope.get("user")
        self.limiter = FrameLimiter(notification_rules.FRAME_LIMITS)
        self.last_sent = 0.0
        self.due = 0.0  # when the pending timer fires
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task | None = None
        await self.channel_layer.group_add(HOME_GROUP, self.channel_name)
        await self.accept()
        await self._send_home()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(HOME_GROUP, self.channel_name)
        if self.timer is not None:
            self.timer.cancel()

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if await checked_frame(self, text_data) is None:
            return
        await self._send_home()

    async def home_changed(self, event):
        """A hint from rooms: send fresh sections now if the last send was a second ago, else when
        the second is up; hints in between are folded into that one send."""
        self._hint(HOME_INTERVAL)

    async def home_counts(self, event):
        """A hint that only listener counts changed: the same, at most once per
        SPACES_HOME_COUNT_SECONDS."""
        self._hint(max(HOME_INTERVAL, settings.SPACES_HOME_COUNT_SECONDS))

    def _hint(self, interval: float) -> None:
        now = time.monotonic()
        if self.task is not None and not self.task.done():
            # A send is under way: the hint's news may have missed it, so one more send follows.
            due = now + interval
        else:
            due = max(now, self.last_sent + interval)
        if self.timer is not None:
            if self.due <= due:
                return  # an earlier send is already coming
            self.timer.cancel()
        self.due = due
        self.timer = asyncio.get_running_loop().call_later(due - now, self._fire)

    def _fire(self) -> None:
        self.timer = None
        self.task = asyncio.ensure_future(self._send_home())

    async def _send_home(self):
        frame = await self._frame()
        await self.send_json(frame)
        # Counted from when a frame leaves, not from when its render began: a slow render must not
        # bring the next frame closer than the interval on the page.
        self.last_sent = time.monotonic()

    @database_sync_to_async
    def _frame(self) -> dict:
        return home_frame(viewer=self.viewer)
