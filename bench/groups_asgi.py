"""Channels' textbook fan-out, for comparison in bench/ws_fanout.py --groups: every socket is a
consumer in one channel-layer group, and each event is a ``group_send`` that every consumer
receives on its own channel, dispatches and encodes."""

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spaces_project.settings")

import django  # noqa: E402

django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter  # noqa: E402

GROUP = "bench"


class GroupConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send(GROUP, {"type": "bench.event", "event": json.loads(text_data)})

    async def bench_event(self, message):
        await self.send(text_data=json.dumps(message["event"], separators=(",", ":")))


application = ProtocolTypeRouter({"websocket": GroupConsumer.as_asgi()})
