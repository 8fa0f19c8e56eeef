"""The websockets under abuse: rate limits per frame type, errors that stay error frames, the
Origin's port, unknown paths, and space_end's answer."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async as db
from channels.testing import WebsocketCommunicator

from rooms import protocol, rules
from rooms.models import Space
from spaces_project.asgi import application
from tests.factories import UserFactory
from tests.rooms_support import connect, live_space, make_host, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def people(db):
    host = make_host()
    return live_space(host), host, UserFactory(), UserFactory()


async def errors_and(peer, kind: str, timeout: float = 0.5) -> tuple[list[str], list[dict]]:
    frames = await peer.drain(timeout=timeout)
    return [f["code"] for f in frames if f["type"] == "error"], [f for f in frames if f["type"] == kind]


# --- rate limits -------------------------------------------------------------------------------


async def test_a_hand_raise_lower_flood_is_cut_off_and_not_relayed(people):
    space, host, alice, bob = people
    h, a, b = await connect(space, host), await connect(space, alice), await connect(space, bob)
    await h.drain()
    await b.drain()
    for i in range(200):
        await a.send(type="hand_raise" if i % 2 == 0 else "hand_lower")
    codes, _ = await errors_and(a, "hand_raised", timeout=1.0)
    budget = rules.FRAME_LIMITS["hand"].count
    assert codes.count("rate_limited") >= 200 - budget - 2
    seen = [f for f in await b.drain(timeout=0.5) if f["type"] in ("hand_raised", "hand_lowered")]
    assert len(seen) <= budget + 2  # not 200
    for peer in (h, a, b):
        await peer.close()


async def test_an_ice_flood_to_the_host_is_cut_off(people):
    space, host, alice, _ = people
    h, a = await connect(space, host), await connect(space, alice)
    await h.drain()
    for _ in range(300):
        await a.send(type="signal", to=host.pk, kind="ice", data={"candidate": "x" * 900})
    codes, _ = await errors_and(a, "signal", timeout=1.5)
    relayed = [f for f in await h.drain(timeout=1.0) if f["type"] == "signal"]
    per_target = rules.FRAME_LIMITS["signal_to"].count
    assert len(relayed) <= per_target + 5
    assert "rate_limited" in codes
    for peer in (h, a):
        await peer.close()


async def test_resync_answers_only_a_few_snapshots(people):
    space, host, alice, _ = people
    a = await connect(space, alice)
    for _ in range(50):
        await a.send(type="resync")
    frames = await a.drain(timeout=1.0)
    snapshots = [f for f in frames if f["type"] == "snapshot"]
    assert len(snapshots) <= rules.FRAME_LIMITS["resync"].count + 1
    assert any(f.get("code") == "rate_limited" for f in frames)
    await a.close()


async def test_mute_toggling_is_limited(people):
    space, host, *_ = people
    h = await connect(space, host)
    for i in range(100):
        await h.send(type="mute_self" if i % 2 == 0 else "unmute_self")
    codes, _ = await errors_and(h, "muted", timeout=1.0)
    assert codes.count("rate_limited") >= 100 - rules.FRAME_LIMITS["mute"].count - 2
    await h.close()


async def test_the_notifications_socket_limits_sync(people):
    _, host, *_ = people
    ws = await notifications_socket(host)
    for _ in range(100):
        await ws.send_json_to({"type": "sync"})
    frames = []
    while not await ws.receive_nothing(timeout=0.5):
        frames.append(await ws.receive_json_from())
    assert sum(f["type"] == "unread" for f in frames) < 30
    assert any(f.get("code") == "rate_limited" for f in frames)
    await ws.disconnect()


# --- errors stay errors ------------------------------------------------------------------------


async def test_a_lone_surrogate_in_ref_is_an_error_frame_not_a_1011(people):
    space, _, alice, _ = people
    a = await connect(space, alice)
    await a.ws.send_to(text_data='{"type": "ping", "ref": "\\ud800"}')
    frame = await a.until("error")
    assert frame["code"] == "bad_json" and "ref" not in frame
    assert (await a.ask("ping"))["type"] == "pong"  # still open
    await a.close()


async def test_a_lone_surrogate_inside_a_signal_is_refused_before_the_relay(people):
    space, host, alice, _ = people
    h, a = await connect(space, host), await connect(space, alice)
    await h.drain()
    await a.ws.send_to(
        text_data=json.dumps({"type": "signal", "to": host.pk, "kind": "ice", "data": {"c": "\ud800"}})
    )
    assert (await a.until("error"))["code"] == "bad_json"
    assert [f for f in await h.drain() if f["type"] == "signal"] == []
    assert (await h.ask("ping"))["type"] == "pong"
    await h.close()
    await a.close()


async def test_deep_nesting_is_bad_json_not_a_server_error(people, caplog):
    space, _, alice, _ = people
    a = await connect(space, alice)
    await a.ws.send_to(text_data='{"type": "ping", "x": ' + "[" * 3000 + "]" * 3000 + "}")
    assert (await a.until("error"))["code"] == "bad_json"
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    await a.close()


async def test_an_oversized_signal_says_the_signal_limit(people):
    space, host, alice, _ = people
    a = await connect(space, alice)
    await a.send(
        type="signal", to=host.pk, kind="offer", data={"sdp": "x" * (protocol.MAX_SIGNAL_FRAME_BYTES + 10)}
    )
    frame = await a.until("error")
    assert frame["code"] == "too_large" and str(protocol.MAX_SIGNAL_FRAME_BYTES) in frame["message"]
    await a.close()


async def notifications_socket(user, origin: bytes = b"http://127.0.0.1") -> WebsocketCommunicator:
    cookie = await db(session_cookie)(user)
    ws = WebsocketCommunicator(
        application,
        "/ws/notifications/",
        headers=[(b"cookie", f"sessionid={cookie}".encode()), (b"origin", origin), (b"host", b"127.0.0.1")],
    )
    connected, _ = await ws.connect(timeout=5)
    assert connected
    assert (await ws.receive_json_from(timeout=5))["type"] == "unread"
    return ws


@pytest.mark.parametrize(
    "frame, code",
    [
        ({"text_data": "[1, 2]"}, "bad_json"),
        ({"text_data": "42"}, "bad_json"),
        ({"text_data": "not json"}, "bad_json"),
        ({"text_data": "[" * 3000}, "too_large"),
        ({"text_data": "[" * 500 + "]" * 500}, "bad_json"),
        ({"bytes_data": b"\x00\x01"}, "bad_json"),
        ({"text_data": '{"type": "launch"}'}, "unknown_type"),
        ({"text_data": '{"type": "sync", "ref": "\\udfff"}'}, "bad_json"),
    ],
)
async def test_the_notifications_socket_answers_bad_frames_with_errors(people, frame, code):
    _, host, *_ = people
    ws = await notifications_socket(host)
    await ws.send_to(**frame)
    answer = await ws.receive_json_from(timeout=5)
    assert (answer["type"], answer["code"]) == ("error", code)
    await ws.send_json_to({"type": "sync"})
    assert (await ws.receive_json_from(timeout=5))["type"] == "unread"  # still open
    await ws.disconnect()


@pytest.mark.parametrize("path", ["/ws/nothing/", "/ws/spaces/abc/", "/elsewhere"])
async def test_an_unknown_websocket_path_is_refused_cleanly(path):
    ws = WebsocketCommunicator(
        application, path, headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    )
    connected, _ = await ws.connect(timeout=5)
    assert not connected


# --- origin --------------------------------------------------------------------------------------


async def test_an_origin_on_another_port_is_refused(people):
    space, _, alice, _ = people
    cookie = await db(session_cookie)(alice)
    for origin, host, ok in [
        (b"http://localhost:9999", b"localhost:8000", False),
        (b"http://localhost:8000", b"localhost:8000", True),
        (b"https://localhost", b"localhost", True),
        (b"http://localhost:8443", b"localhost", False),
    ]:
        ws = WebsocketCommunicator(
            application,
            f"/ws/spaces/{space.pk}/",
            headers=[(b"origin", origin), (b"host", host), (b"cookie", f"sessionid={cookie}".encode())],
        )
        connected, _ = await ws.connect(timeout=5)
        assert connected is ok, (origin, host)
        await ws.disconnect()


# --- space_end answers ---------------------------------------------------------------------------


async def test_space_end_answers_its_ok_before_the_close(people):
    space, host, *_ = people
    h = await connect(space, host)
    await h.send(type="space_end", ref="end-1")
    frames = []
    while True:
        output = await h.ws.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            break
        frames.append(json.loads(output["text"]))
    assert {"type": "ok", "ref": "end-1"} in frames
    assert output["code"] == protocol.CLOSE_ENDED
    assert await db(lambda: Space.objects.get(pk=space.pk).state)() == Space.State.ENDED
