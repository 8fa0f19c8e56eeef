"""Listening without an account: guests on the Space socket (every member action refused, counted
as listeners, identified by a signed cookie, limited per IP address, swept like members), the pages
they see, and the embeddable player's framing rules."""

from __future__ import annotations

import datetime as dt

import pytest
from channels.db import database_sync_to_async as db
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from rooms import protocol, services
from rooms.guests import GUEST_COOKIE, guest_cookie_value, guest_key_from_cookie
from rooms.models import GuestConnection, Participant, Space
from spaces_project.asgi import application
from tests.factories import UserFactory
from tests.rooms_support import Peer, connect, live_space, make_host

pytestmark = pytest.mark.django_db(transaction=True)

MEMBER_ACTIONS = {
    "hand_raise": {},
    "hand_lower": {},
    "speaker_accept": {"user_id": 1},
    "hand_dismiss": {"user_id": 1},
    "speaker_invite": {"user_id": 1},
    "invite_accept": {},
    "invite_decline": {},
    "cohost_appoint": {"user_id": 1},
    "cohost_remove": {"user_id": 1},
    "speaker_move_to_audience": {"user_id": 1},
    "speaker_step_down": {},
    "participant_remove": {"user_id": 1},
    "mute_self": {},
    "unmute_self": {},
    "mute_other": {"user_id": 1},
    "unmute_other": {"user_id": 1},
    "reaction": {"emoji": "❤️"},
    "speaking": {"on": True},
    "captions_toggle": {"on": True},
    "space_end": {},
}


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def signed_cookie(key: str) -> str:
    return guest_cookie_value(key)


async def guest(
    space_or_id, *, ip: str = "203.0.113.7", cookie: str | None = None, snapshot: bool = True
) -> Peer:
    space_id = getattr(space_or_id, "pk", space_or_id)
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", f"{GUEST_COOKIE}={cookie}".encode()))
    communicator = WebsocketCommunicator(application, f"/ws/spaces/{space_id}/", headers=headers)
    communicator.scope["client"] = (ip, 50000)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    first = await communicator.receive_json_from(timeout=5)
    if snapshot:
        assert first["type"] == "snapshot", first
    return Peer(communicator, first if first["type"] == "snapshot" else None, first)


async def closed_with(peer: Peer) -> int:
    return (await peer.ws.receive_output(timeout=3))["code"]


@pytest.fixture
def room(db):
    host = make_host()
    return live_space(host), host


async def test_a_guest_listens_and_counts_as_a_listener_without_a_name(room):
    space, host = room
    h = await connect(space, host)
    g = await guest(space)
    assert g.snapshot["me"] == {
        "user_id": None,
        "guest": True,
        "role": "listener",
        "muted": True,
        "hand_raised": False,
        "invited": False,
        "can_raise_hand": False,
        "removed": False,
    }
    assert g.snapshot["listener_count"] == 1 and g.snapshot["guest_count"] == 1
    assert g.snapshot["listeners"] == []  # counted, never named
    count = await h.until("listener_count", count=1)
    assert count["guests"] == 1
    assert not await db(Participant.objects.exclude(user=host).exists)()
    await g.close()
    assert (await h.until("listener_count", count=0))["guests"] == 0
    assert not await db(GuestConnection.objects.exists)()
    await h.close()


async def test_every_member_action_from_a_guest_is_refused_and_changes_nothing(room):
    space, host = room
    h = await connect(space, host)
    g = await guest(space)
    before = await db(lambda: (Space.objects.values().get(pk=space.pk), list(Participant.objects.values())))()
    for kind, fields in MEMBER_ACTIONS.items():
        answer = await g.ask(kind, **{**fields, **({"user_id": host.pk} if "user_id" in fields else {})})
        assert answer["type"] == "error" and answer["code"] == "forbidden", (kind, answer)
        assert "Sign up" in answer["message"]
    after = await db(lambda: (Space.objects.values().get(pk=space.pk), list(Participant.objects.values())))()
    assert after == before
    heard = [f["type"] for f in await h.drain(timeout=0.3)]
    assert not set(heard) & {
        "hand_raised",
        "reaction",
        "role_changed",
        "muted",
        "space_ended",
        "captions_toggled",
    }
    # What a listener may do, a guest may do too.
    assert (await g.ask("ping"))["type"] == "pong"
    assert (await g.ask("captions_view", on=False))["type"] == "ok"
    assert (await g.ask("resync"))["type"] == "snapshot"
    await g.close()
    await h.close()


async def test_a_guest_signals_only_the_stage_and_the_stage_answers_the_guest(room):
    space, host = room
    listener = await db(UserFactory)()
    h, lee = await connect(space, host), await connect(space, listener)
    g = await guest(space)
    guest_id = -(await db(GuestConnection.objects.get)()).pk
    offer = await g.ask("signal", to=host.pk, kind="offer", data={"id": "x", "sdp": {}})
    assert offer["type"] == "ok"
    relayed = await h.until("signal")
    assert relayed["from"] == guest_id and relayed["kind"] == "offer"
    refused = await g.ask("signal", to=listener.pk, kind="offer", data={"id": "x"})
    assert refused["code"] == "forbidden"
    answer = await h.ask("signal", to=guest_id, kind="answer", data={"id": "x", "sdp": {}})
    assert answer["type"] == "ok"
    got = await g.until("signal")
    assert got["from"] == host.pk and got["kind"] == "answer"
    # A listener can't reach a guest: listeners never exchange audio.
    assert (await lee.ask("signal", to=guest_id, kind="offer", data={}))["code"] == "forbidden"
    for peer in (g, lee, h):
        await peer.close()


async def test_the_guest_cookie_makes_two_tabs_one_guest_and_a_forged_one_is_ignored(room):
    space, _ = room
    cookie = signed_cookie("a" * 32)
    one, two = await guest(space, cookie=cookie), await guest(space, cookie=cookie)
    assert (await two.ask("resync"))["guest_count"] == 1
    forged = await guest(space, cookie="a" * 32 + ":forged")
    keys = await db(lambda: sorted(GuestConnection.objects.values_list("guest_key", flat=True)))()
    assert keys.count("a" * 32) == 2 and len(set(keys)) == 2
    assert guest_key_from_cookie("a" * 32 + ":forged") is None
    assert (await forged.ask("resync"))["guest_count"] == 2
    for peer in (one, two, forged):
        await peer.close()


async def test_sign_in_only_and_ticketed_spaces_refuse_guests_with_words(room, settings):
    space, host = room
    await db(Space.objects.filter(pk=space.pk).update)(signed_in_only=True)
    g = await guest(space, snapshot=False)
    assert g.first["code"] == "entry_refused" and "signed-in" in g.first["message"]
    assert await closed_with(g) == protocol.CLOSE_NOT_SIGNED_IN

    from ticketing.models import TicketSettings

    other = await db(live_space)()
    await db(TicketSettings.objects.create)(space=other, price_cents=500, capacity=10)
    t = await guest(other, snapshot=False)
    assert t.first["code"] == "entry_refused" and "ticket" in t.first["message"]
    assert await closed_with(t) == protocol.CLOSE_REFUSED
    assert not await db(GuestConnection.objects.exists)()


async def test_one_address_may_have_only_so_many_guest_sockets_then_is_told_why(room, settings):
    space, _ = room
    settings.SPACES_GUEST_SOCKETS_PER_IP = 3
    peers = [await guest(space) for _ in range(3)]
    fourth = await guest(space, snapshot=False)
    assert fourth.first["code"] == "entry_refused" and "Too many" in fourth.first["message"]
    assert await closed_with(fourth) == protocol.CLOSE_GUEST_LIMIT
    elsewhere = await guest(space, ip="198.51.100.9")  # another address is not affected
    await peers[0].close()
    again = await guest(space)  # a slot freed
    for peer in (*peers[1:], elsewhere, again):
        await peer.close()


async def test_an_address_opening_guest_sockets_too_fast_is_told_to_wait(room, settings):
    space, _ = room
    settings.SPACES_GUEST_CONNECTS_PER_MINUTE = 2
    for _ in range(2):
        await (await guest(space)).close()
    third = await guest(space, snapshot=False)
    assert third.first["code"] == "entry_refused" and "Wait a minute" in third.first["message"]
    assert await closed_with(third) == protocol.CLOSE_GUEST_LIMIT


def test_the_presence_sweep_removes_dead_guests_and_tells_the_count(room):
    space, _ = room
    services.guest_join(space=space, guest_key="b" * 32, ip="1.2.3.4", channel_name="dead.1", process="gone")
    services.guest_join(space=space, guest_key="c" * 32, ip="1.2.3.4", channel_name="live.1", process="here")
    from rooms.selectors import listener_count

    assert listener_count(space_id=space.pk) == 2
    old = timezone.now() - dt.timedelta(minutes=5)
    GuestConnection.objects.filter(process="gone").update(seen_at=old)
    assert listener_count(space_id=space.pk) == 1  # a dead process's guests stop counting at once
    stats = services.presence_sweep()
    assert stats["stale"] == 1
    assert list(GuestConnection.objects.values_list("channel_name", flat=True)) == ["live.1"]
    assert services.connection_heartbeat(process="here", channel_names=["live.1"]) == 1
    services.space_end(space=space, by=space.host)
    assert not GuestConnection.objects.exists()


def test_the_space_page_welcomes_a_guest_and_refuses_where_it_must(client, room):
    space, _ = room
    page = client.get(space.get_absolute_url())
    html = page.content.decode()
    assert page.status_code == 200 and 'data-testid="guest-signup"' in html
    assert "Sign up to raise your hand" in html and 'data-testid="react"' not in html
    assert guest_key_from_cookie(page.cookies[GUEST_COOKIE].value)
    Space.objects.filter(pk=space.pk).update(signed_in_only=True)
    refused = client.get(space.get_absolute_url())
    assert refused.status_code == 403
    assert "only signed-in people" in refused.content.decode()
    assert "Sign in to listen" in refused.content.decode()


def test_only_the_embed_page_may_be_framed(client, room):
    space, _ = room
    embed = client.get(reverse("rooms:space_embed", args=[space.pk]))
    assert embed.status_code == 200
    assert "X-Frame-Options" not in embed.headers
    assert embed.headers["Content-Security-Policy"] == "frame-ancestors *"
    assert 'data-testid="listen"' in embed.content.decode()
    for url in (space.get_absolute_url(), reverse("home"), "/accounts/login/"):
        assert client.get(url).headers["X-Frame-Options"] == "DENY", url


def test_the_embed_page_says_why_it_cannot_play(client, room, settings):
    space, _ = room
    settings.SPACES_EMBED_FRAME_ANCESTORS = "https://blog.example.org"
    Space.objects.filter(pk=space.pk).update(signed_in_only=True)
    embed = client.get(reverse("rooms:space_embed", args=[space.pk]))
    assert embed.status_code == 403 and "only signed-in people" in embed.content.decode()
    assert embed.headers["Content-Security-Policy"] == "frame-ancestors https://blog.example.org"
    services.space_end(space=space, by=space.host)
    assert (
        "This Space has ended." in client.get(reverse("rooms:space_embed", args=[space.pk])).content.decode()
    )


def test_oembed_of_a_space_is_the_player(client, room, settings):
    space, _ = room
    url = settings.SITE_URL + space.get_absolute_url()
    answer = client.get(reverse("oembed"), {"url": url}).json()
    assert answer["type"] == "rich"
    embed = settings.SITE_URL + reverse("rooms:space_embed", args=[space.pk])
    assert f'src="{embed}"' in answer["html"] and answer["width"] and answer["height"]


def test_the_host_can_switch_on_only_signed_in_listeners(client):
    host = make_host()
    client.force_login(host)
    client.post(
        reverse("rooms:space_new"), {"title": "Members", "speak_policy": "everyone", "signed_in_only": "on"}
    )
    assert Space.objects.get(host=host).signed_in_only
