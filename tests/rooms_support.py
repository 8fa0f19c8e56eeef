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
    """One browser tab on the Space websocket. Frames skipped while waiting for one kind are kept
    for the next read, so no event is lost to the order in which a test looks for them."""

    def __init__(self, communicator: WebsocketCommunicator, snapshot: dict | None, first: dict) -> None:
        self.ws = communicator
        self.snapshot = snapshot
        self.first = first
        self.kept: list[dict] = []

    async def send(self, **message) -> None:
        await self.ws.send_json_to(message)

    async def _next(self, deadline: float) -> dict:
        left = deadline - asyncio.get_running_loop().time()
        return await self.ws.receive_json_from(timeout=max(left, 0.01))

    async def until(self, kind: str, timeout: float = 3, **match) -> dict:
        """The first frame of this type (and fields), kept or new; others are kept."""

        def fits(frame):
            return frame.get("type") == kind and all(frame.get(k) == v for k, v in match.items())

        for i, frame in enumerate(self.kept):
            if fits(frame):
                return self.kept.pop(i)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            frame = await self._next(deadline)
            if fits(frame):
                return frame
            self.kept.append(frame)

    async def ask(self, action: str, /, timeout: float = 3, **fields) -> dict:
        """Send an action with a ref and return its answer (ok, error, or the snapshot for resync)."""
        ref = uuid.uuid4().hex[:8]
        await self.send(type=action, ref=ref, **fields)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            frame = await self._next(deadline)
            if frame.get("ref") == ref or (action == "resync" and frame["type"] == "snapshot"):
                return frame
            self.kept.append(frame)

    async def drain(self, timeout: float = 0.2) -> list[dict]:
        """Every frame kept or arriving within `timeout`."""
        frames, self.kept = self.kept, []
        while not await self.ws.receive_nothing(timeout=timeout):
            frames.append(await self.ws.receive_json_from())
        return frames

    async def close(self) -> None:
        await self.ws.disconnect()


async def open_socket(space_or_id, user, *, origin: bytes = b"http://127.0.0.1") -> WebsocketCommunicator:
    """A websocket to the Space, accepted (the server accepts before it checks entry)."""
    from spaces_project.asgi import application

    space_id = getattr(space_or_id, "pk", space_or_id)
    headers = [(b"origin", origin), (b"host", b"127.0.0.1")]
    if user is not None:
        cookie = await database_sync_to_async(session_cookie)(user)
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    communicator = WebsocketCommunicator(application, f"/ws/spaces/{space_id}/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def connect(
    space_or_id, user, *, origin: bytes = b"http://127.0.0.1", expect_snapshot: bool = True
) -> Peer:
    communicator = await open_socket(space_or_id, user, origin=origin)
    first = await communicator.receive_json_from(timeout=5)
    if expect_snapshot:
        assert first["type"] == "snapshot", first
    return Peer(communicator, first if first["type"] == "snapshot" else None, first)
