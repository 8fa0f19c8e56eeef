"""Helpers for the rooms tests: live Spaces, people in them, and websocket clients on the real ASGI app."""

from __future__ import annotations

import asyncio
import uuid

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from rooms import services
from rooms.models import Participant, Space
from tests.factories import UserFactory


def make_host(**kwargs):
    return UserFactory(hosting_granted=True, **kwargs)


def live_space(host=None, **kwargs) -> Space:
    kwargs.setdefault("title", "Open source audio")
    return services.space_create(host=host or make_host(), **kwargs)


def join(space: Space, user=None, *, process: str = "test-process") -> tuple:
    """Put `user` in `space` with one live connection, as the websocket would. Returns (user, channel)."""
    user = user or UserFactory()
    channel = f"test.{uuid.uuid4().hex}"
    services.participant_join(space=space, user=user, channel_name=channel, process=process)
    return user, channel


def seat(space: Space, user, role: str) -> Participant:
    """Put someone straight into a role (test setup only; the rules are tested through the services)."""
    p = Participant.objects.get(space=space, user=user)
    Participant.objects.filter(pk=p.pk).update(role=role, muted=True)
    p.refresh_from_db()
    return p


def role_of(space: Space, user) -> str:
    return Participant.objects.get(space=space, user=user).role


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class Peer:
    """One browser tab on the Space websocket."""

    def __init__(self, communicator: WebsocketCommunicator, snapshot: dict | None, first: dict) -> None:
        self.ws = communicator
        self.snapshot = snapshot
        self.first = first

    async def send(self, **message) -> None:
        await self.ws.send_json_to(message)

    async def recv(self, timeout: float = 3) -> dict:
        return await self.ws.receive_json_from(timeout=timeout)

    async def until(self, kind: str, timeout: float = 3, **match) -> dict:
        """The next frame of this type (and fields), skipping others."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            frame = await self.ws.receive_json_from(timeout=max(left, 0.01))
            if frame.get("type") == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame

    async def ask(self, kind: str, timeout: float = 3, **fields) -> dict:
        """Send an action with a ref and return its answer (ok or error)."""
        ref = uuid.uuid4().hex[:8]
        await self.send(type=kind, ref=ref, **fields)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            frame = await self.ws.receive_json_from(timeout=max(left, 0.01))
            if frame.get("ref") == ref:
                return frame

    async def drain(self, timeout: float = 0.2) -> list[dict]:
        frames = []
        while not await self.ws.receive_nothing(timeout=timeout):
            frames.append(await self.ws.receive_json_from())
        return frames

    async def close(self) -> None:
        await self.ws.disconnect()


async def connect(space_or_id, user, *, origin: bytes = b"http://127.0.0.1", expect_snapshot: bool = True) -> Peer:
    from spaces_project.asgi import application

    space_id = getattr(space_or_id, "pk", space_or_id)
    headers = [(b"origin", origin), (b"host", b"127.0.0.1")]
    if user is not None:
        cookie = await database_sync_to_async(session_cookie)(user)
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    communicator = WebsocketCommunicator(application, f"/ws/spaces/{space_id}/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    first = await communicator.receive_json_from(timeout=5)
    if expect_snapshot:
        assert first["type"] == "snapshot", first
    return Peer(communicator, first if first["type"] == "snapshot" else None, first)
