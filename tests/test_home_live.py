"""`/ws/home/`: the live bar and "Live now" move without a reload, at most once a second per page."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.services import follow_create
from rooms import services
from rooms.events import home_publish
from spaces_project.asgi import application
from tests.factories import UserFactory
from tests.test_scheduling import make_host

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
pytestmark = pytest.mark.django_db(transaction=True)


async def connect(user=None) -> WebsocketCommunicator:
    headers = [ORIGIN]
    if user is not None:
        from django.test import Client

        client = Client()
        await sync_to_async(client.force_login)(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/home/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


def follower_and_host():
    viewer = UserFactory()
    host = make_host(display_name="Ana Live")
    follow_create(follower=viewer, followee=host)
    return viewer, host


async def test_a_space_that_starts_appears_and_one_that_ends_disappears():
    viewer, host = await sync_to_async(follower_and_host)()
    home = await connect(viewer)
    first = await home.receive_json_from(timeout=5)
    assert first["type"] == "home"
    assert "Ana Live" not in first["live_bar"] and "No Spaces are live" in first["live_now"]

    space = await sync_to_async(services.space_create)(host=host, title="Breakfast radio")
    started = await home.receive_json_from(timeout=3)
    assert 'data-testid="live-bar"' in started["live_bar"] and "Ana Live" in started["live_bar"]
    assert "ring-live" in started["live_bar"]  # the purple ring
    assert "Breakfast radio" in started["live_now"]

    await sync_to_async(services.space_end)(space=space, by=host)
    ended = await home.receive_json_from(timeout=3)
    assert ended["live_bar"].strip() == "" and "Breakfast radio" not in ended["live_now"]
    await home.disconnect()


async def test_listener_counts_move():
    viewer, host = await sync_to_async(follower_and_host)()
    space = await sync_to_async(services.space_create)(host=host, title="Count me")
    home = await connect(viewer)
    assert "0 listening" in (await home.receive_json_from(timeout=5))["live_now"]
    listener = await sync_to_async(UserFactory)()
    await sync_to_async(services.participant_join)(
        space=space, user=listener, channel_name="test-channel", process="test"
    )
    frame = await home.receive_json_from(timeout=3)
    assert "1 listening" in frame["live_now"]
    await home.disconnect()


async def test_a_burst_of_changes_reaches_a_page_at_most_once_a_second():
    home = await connect(await sync_to_async(UserFactory)())
    await home.receive_json_from(timeout=5)
    started = time.monotonic()
    frames = []
    for _ in range(3):  # three bursts, 0.4 s apart
        for _ in range(10):
            await sync_to_async(home_publish)()
        await asyncio.sleep(0.4)
    while not await home.receive_nothing(timeout=1.5):
        frames.append((await home.receive_json_from(timeout=1), time.monotonic()))
    assert 1 <= len(frames) <= 2
    times = [started, *[t for _, t in frames]]
    assert all(b - a >= 0.9 for a, b in zip(times, times[1:], strict=False))
    await home.disconnect()


async def test_signed_out_visitors_see_live_now_and_no_live_bar():
    host = await sync_to_async(make_host)(display_name="Ana Live")
    await sync_to_async(services.space_create)(host=host, title="Open to all")
    home = await connect()
    frame = await home.receive_json_from(timeout=5)
    assert "Open to all" in frame["live_now"] and frame["live_bar"].strip() == ""
    await home.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('{"type": "space_end"}', "unknown_type"),
        ('{"type": "sync", "pad": "' + "x" * 2000 + '"}', "too_large"),
        ('{"type": "sync", "s": "\\ud800"}', "bad_json"),
    ],
    ids=["not-json", "not-object", "unknown-type", "too-large", "lone-surrogate"],
)
async def test_a_malformed_frame_gets_an_error_frame_and_the_socket_stays(frame, code):
    home = await connect(await sync_to_async(UserFactory)())
    await home.receive_json_from(timeout=5)
    await home.send_to(text_data=frame)
    error = await home.receive_json_from(timeout=3)
    assert error["type"] == "error" and error["code"] == code and error["message"]
    await home.send_json_to({"type": "sync"})
    assert (await home.receive_json_from(timeout=3))["type"] == "home"
    await home.disconnect()


async def test_a_binary_frame_gets_an_error_frame():
    home = await connect(await sync_to_async(UserFactory)())
    await home.receive_json_from(timeout=5)
    await home.send_to(bytes_data=b"\x00\x01")
    error = await home.receive_json_from(timeout=3)
    assert (error["type"], error["code"]) == ("error", "bad_json")
    await home.disconnect()


async def test_a_flood_of_frames_is_rate_limited():
    home = await connect(await sync_to_async(UserFactory)())
    await home.receive_json_from(timeout=5)
    codes = []
    for _ in range(25):
        await home.send_to(text_data="nope")
        codes.append((await home.receive_json_from(timeout=3)).get("code"))
    assert "rate_limited" in codes
    await home.disconnect()
