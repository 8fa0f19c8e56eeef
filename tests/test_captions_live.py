"""Live captions through the server: the captions uplink, its rules, and `caption` events.

Most rule tests swap the recognition pool for a recorder, so "never reaches the recogniser" is
checked exactly; one test runs espeak-ng speech through the real pool and the default engine.
"""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async as db
from channels.testing import WebsocketCommunicator

from rooms import protocol, services
from rooms.captions import consumer as captions_consumer
from rooms.captions import service as captions_service
from rooms.captions.events import CaptionEvent, EngineErrorEvent, LaggingEvent
from rooms.captions.frames import RECOMMENDED_FRAME_MS
from rooms.models import CaptionLine, Participant, Space
from tests.factories import UserFactory
from tests.rooms_support import connect, live_space, make_host, session_cookie
from tests.test_captions_engine import conversation, frames_of, words

pytestmark = pytest.mark.django_db(transaction=True)

FRAME = bytes(3200)  # 100 ms of 16 kHz mono s16le


class RecordingPool:
    """Stands in for the CaptionPool: remembers what reached it."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, int, int]] = []
        self.closed: list[tuple[int, int]] = []

    async def start(self) -> None:
        pass

    async def submit(self, space_id, speaker_id, pcm) -> None:
        self.frames.append((space_id, speaker_id, len(pcm)))

    def close_speaker(self, space_id, speaker_id) -> None:
        self.closed.append((space_id, speaker_id))


@pytest.fixture
def pool(monkeypatch) -> RecordingPool:
    recorder = RecordingPool()
    monkeypatch.setattr(captions_consumer, "caption_pool", lambda: recorder)
    return recorder


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    cache.clear()


class Uplink:
    def __init__(self, ws: WebsocketCommunicator, first: dict) -> None:
        self.ws = ws
        self.first = first

    async def send(self, frame: bytes) -> None:
        await self.ws.send_to(bytes_data=frame)

    async def next(self, timeout: float = 3) -> dict:
        return await self.ws.receive_json_from(timeout=timeout)

    async def until(self, kind: str, timeout: float = 3, **match) -> dict:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = max(0.01, deadline - asyncio.get_running_loop().time())
            frame = await self.next(left)
            if frame.get("type") == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame

    async def nothing(self, timeout: float = 0.2) -> bool:
        return await self.ws.receive_nothing(timeout=timeout)

    async def close(self) -> None:
        await self.ws.disconnect()


async def uplink(space_or_id, user) -> Uplink:
    from spaces_project.asgi import application

    space_id = getattr(space_or_id, "pk", space_or_id)
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if user is not None:
        cookie = await db(session_cookie)(user)
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    ws = WebsocketCommunicator(application, f"/ws/spaces/{space_id}/captions/", headers=headers)
    connected, _ = await ws.connect(timeout=5)
    assert connected
    return Uplink(ws, await ws.receive_json_from(timeout=5))


@pytest.fixture
def room(db):
    """A live Space with captions on: the host (unmuted, on stage) and a listener."""
    host = make_host()
    space = live_space(host, captions_enabled=True)
    services.unmute_self(space=space, by=host)
    return space, host, UserFactory()


async def bring_on_stage(space, user, *, unmuted: bool = True) -> None:
    def seat():
        Participant.objects.update_or_create(
            space=space, user=user, defaults={"role": Participant.Role.SPEAKER, "muted": not unmuted}
        )

    await db(seat)()


# --- who may send ---------------------------------------------------------------------------------


async def test_an_unmuted_stage_member_is_told_to_send_and_their_frames_reach_the_recogniser(room, pool):
    space, host, _ = room
    up = await uplink(space, host)
    assert up.first == {
        "type": "captions_status",
        "sending": True,
        "sample_rate": 16000,
        "frame_ms": [20, 40, 60, 80, 100],
        "recommended_frame_ms": RECOMMENDED_FRAME_MS,
    }
    for _ in range(3):
        await up.send(FRAME)
    assert await up.nothing()
    assert pool.frames == [(space.pk, host.pk, 3200)] * 3
    await up.close()
    assert pool.closed == [(space.pk, host.pk)], "leaving ends the stream, so the last words become final"


async def test_a_listener_may_not_send_caption_audio(room, pool):
    space, _, listener = room
    await db(services.participant_join)(space=space, user=listener, channel_name="x.1", process="p")
    up = await uplink(space, listener)
    assert up.first["sending"] is False and up.first["code"] == "not_on_stage"
    for _ in range(5):
        await up.send(FRAME)
    error = await up.until("error")
    assert error["code"] == "not_on_stage" and "stage" in error["message"]
    assert await up.nothing(), "refusals are answered at most once a second per code, not frame for frame"
    assert pool.frames == []
    await up.close()


async def test_a_muted_speaker_sends_nothing_and_unmuting_lets_audio_through(room, pool):
    space, host, alice = room
    await bring_on_stage(space, alice, unmuted=False)
    up = await uplink(space, alice)
    assert up.first["code"] == "muted" and "Unmute" in up.first["message"]
    await up.send(FRAME)
    assert (await up.until("error"))["code"] == "muted"
    assert pool.frames == []

    await db(services.unmute_self)(space=space, by=alice)
    assert (await up.until("captions_status"))["sending"] is True
    await up.send(FRAME)
    assert await up.nothing()
    assert pool.frames == [(space.pk, alice.pk, 3200)]

    # The host mutes her: the stream is closed at once (its last words become a final).
    await db(services.mute_other)(space=space, by=host, user_id=alice.pk)
    status = await up.until("captions_status")
    assert status["sending"] is False and status["code"] == "muted"
    assert pool.closed == [(space.pk, alice.pk)]
    await up.send(FRAME)
    assert (await up.until("error"))["code"] == "muted"
    assert len(pool.frames) == 1
    await up.close()


async def test_nothing_is_captioned_while_captions_are_off(room, pool):
    space, host, _ = room
    await db(services.captions_toggle)(space=space, by=host, on=False)
    up = await uplink(space, host)
    assert up.first["code"] == "captions_off"
    await up.send(FRAME)
    assert (await up.until("error"))["code"] == "captions_off"
    assert pool.frames == []
    await db(services.captions_toggle)(space=space, by=host, on=True)
    assert (await up.until("captions_status"))["sending"] is True
    await up.send(FRAME)
    assert await up.nothing()
    assert len(pool.frames) == 1
    await up.close()


async def test_a_speaker_moved_to_the_audience_is_no_longer_captioned(room, pool):
    space, host, alice = room
    await bring_on_stage(space, alice)
    await db(services.participant_join)(space=space, user=alice, channel_name="x.2", process="p")
    up = await uplink(space, alice)
    assert up.first["sending"] is True
    await up.send(FRAME)
    await db(services.speaker_move_to_audience)(space=space, by=host, user_id=alice.pk)
    assert (await up.until("captions_status"))["code"] == "not_on_stage"
    await up.send(FRAME)
    assert (await up.until("error"))["code"] == "not_on_stage"
    assert len(pool.frames) == 1
    await up.close()


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (bytes(3000), "bad_size"),
        (bytes(6400), "too_large"),
        (bytes(3201), "odd_length"),
        ("hello", "not_binary"),
    ],
)
async def test_frames_of_the_wrong_size_or_kind_are_refused(room, pool, frame, code):
    space, host, _ = room
    up = await uplink(space, host)
    if isinstance(frame, str):
        await up.ws.send_to(text_data=frame)
    else:
        await up.send(frame)
    error = await up.until("error")
    assert error["code"] == code and error["message"]
    assert pool.frames == []
    await up.close()


async def test_a_flood_is_refused_and_only_real_time_audio_gets_through(room, pool):
    space, host, _ = room
    up = await uplink(space, host)
    for _ in range(30):  # 3 s of audio at once; the bucket holds one second
        await up.send(FRAME)
    error = await up.until("error")
    assert error["code"] == "flood"
    assert await up.nothing(0.3)
    assert 10 <= len(pool.frames) <= 12
    await up.close()


# --- who may connect ------------------------------------------------------------------------------


async def test_entry_rules_apply_to_the_captions_socket(room, pool):
    space, host, stranger = room
    anonymous = await uplink(space, None)
    assert anonymous.first["code"] == "entry_refused"
    assert (await anonymous.ws.receive_output(timeout=3))["code"] == protocol.CLOSE_NOT_SIGNED_IN

    await db(services.participant_join)(space=space, user=stranger, channel_name="x.3", process="p")
    await db(services.participant_remove)(space=space, by=host, user_id=stranger.pk)
    removed = await uplink(space, stranger)
    assert "removed" in removed.first["message"]
    assert (await removed.ws.receive_output(timeout=3))["code"] == protocol.CLOSE_REFUSED

    nowhere = await uplink(999_999, host)
    assert (await nowhere.ws.receive_output(timeout=3))["code"] == protocol.CLOSE_NOT_FOUND
    assert pool.frames == []


async def test_the_captions_socket_closes_when_the_space_ends(room, pool):
    space, host, _ = room
    up = await uplink(space, host)
    await up.send(FRAME)
    await db(services.space_end)(space=space, by=host)
    while True:
        output = await up.ws.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            break
    assert output["code"] == protocol.CLOSE_ENDED
    assert pool.closed == [(space.pk, host.pk)]


async def test_a_second_tab_takes_over_the_uplink(room, pool):
    space, host, _ = room
    first = await uplink(space, host)
    second = await uplink(space, host)
    assert second.first["sending"] is True
    assert (await first.until("error"))["code"] == "entry_refused"
    assert (await first.ws.receive_output(timeout=3))["code"] == captions_consumer.CLOSE_REPLACED
    await second.close()


# --- pool events → Space events -------------------------------------------------------------------


def caption(space, user, kind, text, start=1.0, end=2.0):
    started = space.started_at.timestamp() + 10
    return CaptionEvent(kind, space.pk, user.pk, text, start, end, started)


async def test_partials_and_the_final_reach_everyone_and_only_finals_are_kept(room):
    space, host, listener = room
    peer = await connect(space, listener)
    cache = {}
    from collections import OrderedDict

    cache = OrderedDict()
    await db(captions_service.caption_events_publish)([caption(space, host, "partial", "good")], cache)
    (partial,) = (await peer.until("captions"))["lines"]
    assert partial == {
        "type": "caption",
        "user_id": host.pk,
        "name": host.name,
        "text": "good",
        "final": False,
        "utterance": partial["utterance"],
        "start": 11.0,
        "end": 12.0,
    }
    # The final comes in the next frame, no sooner than CAPTIONS_INTERVAL after the first.
    await db(captions_service.caption_events_publish)([caption(space, host, "final", "good morning")], cache)
    (final,) = (await peer.until("captions"))["lines"]
    assert final == {**partial, "text": "good morning", "final": True}
    lines = await db(
        lambda: list(CaptionLine.objects.filter(space=space).values_list("speaker_id", "text", "start"))
    )()
    assert lines == [(host.pk, "good morning", 11.0)]
    await peer.close()


async def test_a_socket_that_hid_captions_gets_no_captions_until_it_shows_them_again(room):
    from collections import OrderedDict

    space, host, listener = room
    hiding, showing = await connect(space, listener), await connect(space, await db(UserFactory)())
    await hiding.send(type="captions_view", on=False, ref="h")
    assert (await hiding.until("ok"))["ref"] == "h"
    cache = OrderedDict()
    await db(captions_service.caption_events_publish)([caption(space, host, "final", "hello all")], cache)
    assert (await showing.until("captions"))["lines"][0]["text"] == "hello all"
    assert [f for f in await hiding.drain(timeout=0.3) if f["type"] == "captions"] == []
    await hiding.send(type="captions_view", on=True, ref="s")
    assert (await hiding.until("ok"))["ref"] == "s"
    await db(captions_service.caption_events_publish)(
        [caption(space, host, "final", "welcome back", start=3.0, end=4.0)], cache
    )
    assert (await hiding.until("captions", timeout=3))["lines"][0]["text"] == "welcome back"
    # Not a room change: nobody else hears of it (joins may still arrive late through Redis),
    # and a bad value is refused to the sender only.
    await hiding.send(type="captions_view", on="no")
    assert (await hiding.until("error"))["code"] == "bad_field"
    room_events = {"captions", "listener_count", "participant_joined"}
    assert not [f for f in await showing.drain() if f["type"] not in room_events]
    await hiding.close()
    await showing.close()


async def test_lagging_and_engine_errors_are_told_to_the_host_only(room):
    from collections import OrderedDict

    space, host, listener = room
    h = await connect(space, host)
    peer = await connect(space, listener)
    await db(captions_service.caption_events_publish)(
        [
            LaggingEvent(space.pk, host.pk, True, 1.5, 1.5),
            LaggingEvent(space.pk, host.pk, False, 0.0, 1.5),
            EngineErrorEvent(space.pk, host.pk, "ValueError: boom"),
        ],
        OrderedDict(),
    )
    lagging = await h.until("captions_lagging")
    assert (
        lagging["user_id"] == host.pk
        and "running behind" in lagging["message"]
        and "1.5 s" in lagging["message"]
    )
    restarted = await h.until("captions_lagging")
    assert "restarted" in restarted["message"] and "boom" not in restarted["message"]
    assert not [f for f in await h.drain() if f["type"] == "captions_lagging"], "catching up is not news"
    assert not [f for f in await peer.drain() if f["type"] == "captions_lagging"]
    await h.close()
    await peer.close()


# --- the whole path, with the real recogniser -----------------------------------------------------


@pytest.mark.slow
async def first_final_line(peer, *, timeout: float) -> dict:
    """The first settled caption line in the `captions` frames a socket receives."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        frame = await peer.until("captions", timeout=max(remaining, 0.01))
        finals = [line for line in frame["lines"] if line["final"]]
        if finals:
            return finals[0]


async def test_speech_on_the_captions_socket_arrives_as_captions_on_the_space_socket(
    room, tmp_path, settings
):
    settings.SPACES_CAPTIONS_WORKERS = 1
    settings.MEDIA_ROOT = tmp_path / "media"
    space, host, listener = room
    pcm = await asyncio.to_thread(conversation, ["good morning everyone"], tmp_path)
    peer = await connect(space, listener)
    up = await uplink(space, host)
    assert up.first["sending"] is True
    try:
        await captions_service.caption_pool().wait_ready()
        for frame in frames_of(pcm):
            await up.send(frame)
            await asyncio.sleep(0.07)  # a little faster than real time, within the flood limit
        final = await first_final_line(peer, timeout=15)
        assert final["user_id"] == host.pk and final["name"] == host.name
        assert {"morning", "everyone"} <= words(final["text"]), final
        assert 0 <= final["start"] < final["end"]
        line = await db(lambda: CaptionLine.objects.get(space=space))()
        assert line.text == final["text"] and line.speaker_id == host.pk
        with line.audio.open("rb") as kept:  # Whisper's speech, kept for the improved transcript
            assert kept.read(4) == b"RIFF"
        assert await up.nothing(), "no error frames for well-formed real-time audio"
    finally:
        await up.close()
        await peer.close()
        await captions_service.captions_shutdown()


async def test_a_final_after_the_transcript_was_deleted_is_not_kept(room):
    space, host, _ = room

    def scenario():
        services.space_end(space=space, by=host)
        captions_service.transcript_delete(space=Space.objects.get(pk=space.pk), by=host)
        message = captions_service.caption_event(
            caption(space, host, "final", "too late"), captions_service.SpeakerInfo(host.name, host.pk, None)
        )
        return captions_service.caption_line_record(space_id=space.pk, speaker_id=host.pk, event=message)

    assert await db(scenario)() is None
    assert await db(CaptionLine.objects.count)() == 0


async def test_a_speakers_partials_are_sent_at_most_twice_a_second_and_the_final_at_once():
    relay = captions_service.CaptionRelay()
    published: list[tuple[str, str]] = []

    async def record(events, cache):
        published.extend((e.kind, e.text) for e in events)

    relay._publish = record

    def event(kind, text, speaker=1):
        return CaptionEvent(kind, 5, speaker, text, 0.0, 1.0, 1000.0)

    relay.on_event(event("partial", "good"))
    relay.on_event(event("partial", "good mor"))
    relay.on_event(event("partial", "good morning", speaker=2))  # another speaker is not held back
    relay.on_event(event("partial", "good morning"))
    await asyncio.sleep(captions_service.PARTIAL_EVERY_SECONDS + 0.2)
    assert published == [("partial", "good"), ("partial", "good morning"), ("partial", "good morning")]
    relay.on_event(event("partial", "good morning every"))
    relay.on_event(event("final", "good morning everyone"))
    await asyncio.sleep(captions_service.PARTIAL_EVERY_SECONDS + 0.2)
    assert published[3:] == [("final", "good morning everyone")], "the final replaces a held partial"
    relay.task.cancel()
