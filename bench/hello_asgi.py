"""The least Django and Channels do for a signed-in socket, for comparison in bench/join_storm.py:
daphne, Channels' session and auth middleware, and a consumer that looks the user up (one trip
through Channels' database thread: the session row, then the user row) and sends one message. No
Space, no presence row, no snapshot."""

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spaces_project.settings")

import django  # noqa: E402

django.setup()

from channels.auth import AuthMiddlewareStack, get_user  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter  # noqa: E402


class HelloConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        user = await get_user(self.scope)
        if not user.is_authenticated:  # the seeded session was not found: an error for the figure
            await self.close(code=4401)
            return
        await self.accept()
        await self.send(text_data=json.dumps({"type": "snapshot", "user_id": user.pk}))


application = ProtocolTypeRouter({"websocket": AuthMiddlewareStack(HelloConsumer.as_asgi())})
