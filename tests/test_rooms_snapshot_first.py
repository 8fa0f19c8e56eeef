"""Nothing reaches a page before its snapshot (docs/protocol.md, "Connecting"), not even what the
audio says on its own: a peer-to-peer socket that hears someone left answers with a hang-up frame,
and while the snapshot is still being read that frame must wait behind it."""

from __future__ import annotations

import asyncio
import json

from rooms.audio import PeerSocketAudio
from rooms.consumers import SpaceConsumer


class Space:
    pk = 1


class Person:
    pk = 5


def pending_socket() -> tuple[SpaceConsumer, list[dict]]:
    sent: list[dict] = []

    async def send(event: dict) -> None:
        sent.append(event)

    consumer = SpaceConsumer()
    consumer.user = Person()
    consumer.ready = False  # subscribed, snapshot not sent yet
    consumer.backlog = []
    consumer.finished = False
    consumer.media = PeerSocketAudio(space=Space(), user=Person(), send=send)
    return consumer, sent


async def test_a_hang_up_for_someone_who_left_waits_for_the_snapshot():
    consumer, sent = pending_socket()
    left = {"type": "participant_left", "user_id": 9, "reason": "left"}
    await consumer.hub_deliver(left, json.dumps(left))
    for _ in range(5):
        await asyncio.sleep(0)  # let anything the audio spawned run
    assert sent == []  # neither the event nor the audio's answer went out
    assert consumer.backlog == [(left, json.dumps(left))]
