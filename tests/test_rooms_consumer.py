"""The Space websocket on the real ASGI application (origin check, session auth, routing)."""

import asyncio
import json
import threading

import pytest
from channels.db import database_sync_to_async as db

from accounts import services as accounts_services
from rooms import protocol, services
from rooms.events import local_space_ids
from rooms.models import Connection, Participant, Space
from rooms.selectors import space_snapshot
from tests.factories import UserFactory
from tests.rooms_support import connect, live_space, make_host, open_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

Role = Participant.Role


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def people(db):
    host = make_host()
    space = live_space(host)
    return space, host, UserFactory(), UserFactory()


async def role(space, user) -> str:
    return await db(lambda: Participant.objects.get(space=space, user=user).role)()


# --- connecting -------------------------------------------------------------------------------------


async def test_snapshot_describes_the_room_for_each_person(people):
    space, host, alice, _ = people
    h = await connect(space, host)
    a = await connect(space, alice)
    assert h.snapshot["me"]["role"] == "host" and a.snapshot["me"]["role"] == "listener"
    assert a.snapshot["space"]["title"] == space.title and a.snapshot["space"]["state"] == "live"
    assert [p["user_id"] for p in a.snapshot["stage"]] == [host.pk]
    assert a.snapshot["listener_count"] == 1
    assert a.snapshot["listeners"][0]["user_id"] == alice.pk
    assert a.snapshot["me"]["can_raise_hand"] is True
    assert a.snapshot["reactions"] == []
    json.dumps(a.snapshot)  # JSON all the way down
    joined = await h.until("participant_joined")
    assert joined["participant"]["user_id"] == alice.pk
    assert (await h.until("listener_count"))["count"] == 1
    await a.close()
    await h.close()


async def test_a_socket_cancelled_mid_join_leaves_no_presence_behind(people, monkeypatch):
    """daphne cancels an application instance still busy 10 s after its client left (in a storm, a
    join queued behind the database thread), and again every second until it is done; `disconnect`
    never runs. The join still commits in the database thread: its row, its count and its place in
    the hub must go with the socket all the same, or the heartbeat keeps a ghost listener forever."""
    space, host, alice, _ = people
    started, go_on = threading.Event(), threading.Event()
    real_join = services.participant_join

    def slow_join(**kwargs):
        started.set()
        go_on.wait(10)
        return real_join(**kwargs)

    monkeypatch.setattr(services, "participant_join", slow_join)
    socket = await open_socket(space, alice)
    assert await asyncio.to_thread(started.wait, 5)
    socket.future.cancel()  # the client is long gone; daphne kills the instance
    await asyncio.sleep(0.05)
    socket.future.cancel()  # and again a second later, while it cleans up
    go_on.set()
    with pytest.raises(asyncio.CancelledError):
        await socket.future

    def state():
        p = Participant.objects.get(space=space, user=alice)
        count = space_snapshot(space=space, viewer=host)["listener_count"]
        return Connection.objects.filter(user=alice).count(), p.left_at is not None, count

    deadline = asyncio.get_running_loop().time() + 5
    while await db(state)() != (0, True, 0) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert await db(state)() == (0, True, 0)
    assert space.pk not in local_space_ids()  # nothing left in this process's hub


async def test_a_client_that_leaves_while_its_join_waits_for_the_database_is_not_joined(people, monkeypatch):
    """In a storm, a socket's lookups and join queue behind the one database thread, and clients
    give up. Channels hands the consumer the disconnect only after `connect` returns: the consumer
    reads it as it arrives, so a join the thread hasn't reached yet is skipped, not made and undone."""
    from channels.testing import WebsocketCommunicator

    from spaces_project.asgi import application

    space, host, alice, _ = people
    joins = []
    real_join = services.participant_join
    monkeypatch.setattr(services, "participant_join", lambda **kw: joins.append(kw) or real_join(**kw))
    cookie = await db(session_cookie)(alice)
    busy, go_on = threading.Event(), threading.Event()

    def database_thread_busy():
        busy.set()
        go_on.wait(10)

    blocker = asyncio.ensure_future(db(database_thread_busy)())
    assert await asyncio.to_thread(busy.wait, 5)
    headers = [
        (b"origin", b"http://127.0.0.1"),
        (b"host", b"127.0.0.1"),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]
    socket = WebsocketCommunicator(application, f"/ws/spaces/{space.pk}/", headers=headers)
    connected, _ = await socket.connect(timeout=5)
    assert connected  # accepted at once, though the database thread is busy; its lookups wait
    await socket.send_input({"type": "websocket.disconnect", "code": 1001})
    await asyncio.sleep(0.2)  # the consumer's pump reads it while the thread is still busy
    go_on.set()
    await blocker
    await socket.wait(timeout=5)
    assert joins == []
    assert not await db(Participant.objects.filter(space=space, user=alice).exists)()
    assert space.pk not in local_space_ids()
    # A client that stays is joined as always.
    h = await connect(space, host)
    assert [len(joins), h.snapshot["me"]["role"]] == [1, "host"]
    await h.close()


async def test_a_listener_is_in_their_own_snapshot_when_the_hub_kept_one_from_before(people, monkeypatch):
    """The hub keeps the shared part of the snapshot; over Redis the newcomer's own arrival may
    reach the hub after their snapshot is made, and their own `participant_joined` is not sent to
    them, so a part kept from before they joined must not be used for them."""
    from rooms.events import SpaceHub
    from rooms.selectors import space_snapshot_shared

    space, host, alice, bob = people
    h = await connect(space, host)
    a = await connect(space, alice)
    before_bob = await db(space_snapshot_shared)(space_id=space.pk)
    assert [p["user_id"] for p in before_bob["listeners"]] == [alice.pk]
    monkeypatch.setattr(SpaceHub, "shared_snapshot", lambda hub: (before_bob, 0))
    b = await connect(space, bob)
    assert [p["user_id"] for p in b.snapshot["listeners"]] == [alice.pk, bob.pk]
    assert b.snapshot["listener_count"] == 2
    for socket in (b, a, h):
        await socket.close()


async def test_anonymous_visitor_is_told_to_sign_in_where_the_host_wants_signed_in_listeners(people):
    space, *_ = people
    await db(Space.objects.filter(pk=space.pk).update)(signed_in_only=True)
    peer = await connect(space, None, expect_snapshot=False)
    assert peer.first["code"] == "entry_refused" and "Sign in" in peer.first["message"]
    assert (await peer.ws.receive_output(timeout=2))["code"] == protocol.CLOSE_NOT_SIGNED_IN


async def test_foreign_origin_is_rejected(people):
    from channels.testing import WebsocketCommunicator

    from spaces_project.asgi import application

    space, host, *_ = people
    ws = WebsocketCommunicator(
        application, f"/ws/spaces/{space.pk}/", headers=[(b"origin", b"http://evil.test")]
    )
    connected, _ = await ws.connect()
    assert not connected


async def test_unknown_space_closes_with_not_found(people):
    _, host, *_ = people
    peer = await connect(999999, host, expect_snapshot=False)
    assert (await peer.ws.receive_output(timeout=2))["code"] == protocol.CLOSE_NOT_FOUND


async def test_ended_space_closes_with_ended(people):
    space, host, alice, _ = people
    await db(services.space_end)(space=space, by=host)
    peer = await connect(space, alice, expect_snapshot=False)
    assert "ended" in peer.first["message"]
    assert (await peer.ws.receive_output(timeout=2))["code"] == protocol.CLOSE_ENDED


async def test_suspended_user_is_refused_with_a_reason(people):
    space, _, alice, _ = people
    await db(lambda: accounts_services.user_suspend(user=alice, by=UserFactory(is_staff=True)))()
    # Suspension ends their sessions; a socket still holding one is refused too.
    await db(lambda: type(alice).objects.filter(pk=alice.pk).update(is_active=True))()
    peer = await connect(space, alice, expect_snapshot=False)
    assert peer.first["code"] == "entry_refused"


# --- stage rules over the socket ---------------------------------------------------------------------


async def test_hand_raised_accepted_then_muted_and_everyone_sees_it(people):
    space, host, alice, bob = people
    h = await connect(space, host)
    a = await connect(space, alice)
    b = await connect(space, bob)
    assert (await a.ask("hand_raise"))["type"] == "ok"
    raised = await b.until("hand_raised")
    assert raised["hand"]["user_id"] == alice.pk
    assert (await h.ask("speaker_accept", user_id=alice.pk))["type"] == "ok"
    changed = await b.until("role_changed")
    assert changed["participant"]["role"] == "speaker" and changed["previous"] == "listener"
    assert changed["v"] > raised["v"]
    assert (await a.ask("unmute_self"))["type"] == "ok"
    assert (await b.until("muted"))["muted"] is False
    assert (await h.ask("mute_other", user_id=alice.pk))["type"] == "ok"
    muted = await b.until("muted", muted=True)
    assert muted["by"] == host.pk
    for peer in (h, a, b):
        await peer.close()


async def test_listener_trying_to_unmute_a_speaker_gets_an_error_and_nothing_changes(people):
    space, host, alice, bob = people
    await db(lambda: Participant.objects.create(space=space, user=bob, role=Role.SPEAKER))()
    a = await connect(space, alice)
    b = await connect(space, bob)
    answer = await a.ask("unmute_other", user_id=bob.pk)
    assert answer["type"] == "error" and answer["code"] == "forbidden"
    assert "unmute themselves" in answer["message"]
    answer = await a.ask("unmute_self")
    assert answer["code"] == "forbidden"
    assert await db(lambda: Participant.objects.get(space=space, user=bob).muted)()
    assert not any(f["type"] == "muted" for f in await b.drain())
    await a.close()
    await b.close()


async def test_cohost_trying_to_remove_the_host_is_refused(people):
    space, host, alice, _ = people
    h = await connect(space, host)
    a = await connect(space, alice)
    await h.ask("cohost_appoint", user_id=alice.pk)
    assert await role(space, alice) == "cohost"
    answer = await a.ask("participant_remove", user_id=host.pk)
    assert (answer["code"], answer["type"]) == ("forbidden", "error")
    assert "host" in answer["message"]
    assert await db(lambda: Participant.objects.get(space=space, user=host).removed_at)() is None
    await h.close()
    await a.close()


async def test_removed_listener_is_disconnected_and_cannot_come_back(people):
    space, host, alice, _ = people
    h = await connect(space, host)
    a = await connect(space, alice)
    assert (await h.ask("participant_remove", user_id=alice.pk))["type"] == "ok"
    told = await a.until("error")
    assert told["code"] == "entry_refused"
    assert (await a.ws.receive_output(timeout=2))["code"] == protocol.CLOSE_REMOVED
    left = await h.until("participant_left")
    assert (left["user_id"], left["reason"]) == (alice.pk, "removed")
    again = await connect(space, alice, expect_snapshot=False)
    assert "removed" in again.first["message"]
    assert (await again.ws.receive_output(timeout=2))["code"] == protocol.CLOSE_REFUSED
    await h.close()


async def test_invite_accept_over_the_socket(people):
    space, host, alice, _ = people
    h = await connect(space, host)
    a = await connect(space, alice)
    assert (await h.ask("speaker_invite", user_id=alice.pk))["type"] == "ok"
    assert (await a.until("invited"))["user_id"] == alice.pk
    assert (await a.ask("invite_accept"))["type"] == "ok"
    assert (await h.until("role_changed"))["participant"]["role"] == "speaker"
    await h.close()
    await a.close()


async def test_reaction_reaches_the_room_and_a_flood_only_tells_the_sender(people, settings):
    settings.SPACES_REACTIONS_PER_WINDOW = 2
    settings.SPACES_REACTIONS_WINDOW_SECONDS = 60
    space, host, alice, _ = people
    h = await connect(space, host)
    a = await connect(space, alice)
    await h.drain()
    for _ in range(2):
        assert (await a.ask("reaction", emoji="❤️"))["type"] == "ok"
    flood = await a.ask("reaction", emoji="❤️")
    assert flood["code"] == "rate_limited"
    reactions = [r for f in await h.drain(0.6) if f["type"] == "reactions" for r in f["items"]]
    assert [(r["user_id"], r["emoji"]) for r in reactions] == [(alice.pk, "❤️")] * 2
    assert not any(f["type"] == "error" for f in await h.drain())
    await h.close()
    await a.close()


async def test_speaking_is_relayed_for_unmuted_stage_members_and_throttled(people):
    space, host, alice, _ = people
    h = await connect(space, host)
    a = await connect(space, alice)
    assert (await a.ask("speaking", on=True))["code"] == "forbidden"  # a listener
    await h.ask("unmute_self")
    await h.ask("speaking", on=True)
    await h.ask("speaking", on=True)  # inside the throttle: dropped
    frames = [f for f in await a.drain(0.3) if f["type"] == "speaking"]
    assert frames == [{"type": "speaking", "user_id": host.pk, "on": True}]
    await h.close()
    await a.close()


async def test_captions_toggle_by_host_only(people):
    space, host, alice, _ = people
    h = await connect(space, host)
    a = await connect(space, alice)
    assert (await a.ask("captions_toggle", on=True))["code"] == "forbidden"
    assert (await h.ask("captions_toggle", on=True))["type"] == "ok"
    assert (await a.until("captions_toggled"))["on"] is True
    await h.close()
    await a.close()


async def test_host_ends_the_space_and_every_socket_closes(people):
    space, host, alice, bob = people
    h = await connect(space, host)
    a = await connect(space, alice)
    b = await connect(space, bob)
    await h.send(type="space_end")
    for peer in (a, b):
        assert (await peer.until("space_ended"))["reason"] == "host"
        assert (await peer.ws.receive_output(timeout=2))["code"] == protocol.CLOSE_ENDED
    space = await db(Space.objects.get)(pk=space.pk)
    assert space.state == "ended"


async def test_moderation_can_close_a_users_sockets(people):
    space, host, alice, _ = people
    a = await connect(space, alice)
    await db(services.user_sockets_close)(user_id=alice.pk, message="Your account was suspended.")
    told = await a.until("error")
    assert told["message"] == "Your account was suspended."
    assert (await a.ws.receive_output(timeout=2))["code"] == protocol.CLOSE_FORCED


# --- malformed frames ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"no": "type"}', "unknown_type"),
        ('{"type": "speaker_accept"}', "bad_field"),
        ('{"type": "speaker_accept", "user_id": "7"}', "bad_field"),
        ('{"type": "speaker_accept", "user_id": true}', "bad_field"),
        ('{"type": "reaction", "emoji": "🍕"}', "bad_field"),
        ('{"type": "hand_raise", "ref": 12}', "bad_field"),
        ('{"type": "signal", "to": 1, "kind": "offer", "data": "sdp"}', "bad_field"),
    ],
)
async def test_malformed_frames_get_an_error_and_change_nothing(people, frame, code):
    space, _, alice, _ = people
    a = await connect(space, alice)
    await a.ws.send_to(text_data=frame)
    answer = await a.until("error")
    assert answer["code"] == code and answer["message"]
    assert await db(lambda: Space.objects.get(pk=space.pk).version)() == 0
    assert (await a.ask("ping"))["type"] == "pong"  # still alive
    await a.close()


async def test_oversized_and_binary_frames_are_refused(people):
    space, _, alice, _ = people
    a = await connect(space, alice)
    await a.ws.send_to(text_data=json.dumps({"type": "hand_raise", "pad": "x" * protocol.MAX_FRAME_BYTES}))
    assert (await a.until("error"))["code"] == "too_large"
    await a.ws.send_to(text_data="x" * (protocol.MAX_SIGNAL_FRAME_BYTES + 1))
    assert (await a.until("error"))["code"] == "too_large"
    await a.ws.send_to(bytes_data=b"\x00\x01")
    assert (await a.until("error"))["code"] == "bad_json"
    assert await db(lambda: Participant.objects.get(space=space, user=alice).hand_raised_at)() is None
    assert (await a.ask("ping"))["type"] == "pong"
    await a.close()


async def test_errors_echo_the_ref(people):
    space, _, alice, _ = people
    a = await connect(space, alice)
    await a.send(type="mute_other", user_id=1, ref="r-42")
    answer = await a.until("error")
    assert answer["ref"] == "r-42"
    await a.close()


# --- reconnecting ------------------------------------------------------------------------------------


async def test_reconnecting_client_gets_a_snapshot_with_what_it_missed(people):
    space, host, alice, bob = people
    h = await connect(space, host)
    a = await connect(space, alice)
    b = await connect(space, bob)
    await a.ask("hand_raise")
    await b.close()  # bob's connection drops
    await h.ask("speaker_accept", user_id=alice.pk)
    await a.ask("unmute_self")
    await h.ask("captions_toggle", on=True)
    b = await connect(space, bob)
    snap = b.snapshot
    stage = {p["user_id"]: p for p in snap["stage"]}
    assert stage[alice.pk]["role"] == "speaker" and stage[alice.pk]["muted"] is False
    assert snap["space"]["captions"] is True and snap["hands"] == []
    assert snap["v"] == await db(lambda: Space.objects.get(pk=space.pk).version)()
    resync = await b.ask("resync")  # a fresh snapshot on demand
    assert resync["type"] == "snapshot" and resync["v"] == snap["v"]
    for peer in (h, a, b):
        await peer.close()


async def test_closing_the_last_tab_makes_a_listener_leave(people):
    space, host, alice, _ = people
    h = await connect(space, host)
    a1 = await connect(space, alice)
    a2 = await connect(space, alice)
    await h.drain()
    await a1.close()
    assert not [f for f in await h.drain(1.5) if f["type"] == "listeners_left"]  # still one tab
    await a2.close()
    left = await h.until("listeners_left")
    assert left["user_ids"] == [alice.pk]
    assert await db(lambda: Connection.objects.filter(user=alice).count())() == 0
    await h.close()


async def test_leave_gives_up_the_seat_and_closes(people):
    space, host, alice, _ = people
    await db(lambda: Participant.objects.create(space=space, user=alice, role=Role.SPEAKER))()
    h = await connect(space, host)
    a = await connect(space, alice)
    await a.send(type="leave", ref="bye")
    assert (await a.until("ok"))["ref"] == "bye"
    assert (await a.ws.receive_output(timeout=2))["code"] == 1000
    assert (await h.until("role_changed"))["participant"]["role"] == "listener"
    await h.close()


# --- signalling --------------------------------------------------------------------------------------


async def test_signals_flow_between_stage_and_audience_only(people):
    space, host, alice, bob = people
    h = await connect(space, host)
    a = await connect(space, alice)
    b = await connect(space, bob)
    offer = {"type": "offer", "sdp": "v=0"}
    assert (await h.ask("signal", to=alice.pk, kind="offer", data=offer))["type"] == "ok"
    got = await a.until("signal")
    assert (got["from"], got["kind"], got["data"]) == (host.pk, "offer", offer)
    assert (await a.ask("signal", to=host.pk, kind="answer", data={"sdp": "x"}))["type"] == "ok"
    assert (await h.until("signal"))["from"] == alice.pk
    refused = await a.ask("signal", to=bob.pk, kind="offer", data=offer)  # listener to listener
    assert refused["code"] == "forbidden"
    assert not [f for f in await b.drain(0.3) if f["type"] == "signal" and f["from"] == alice.pk]
    for peer in (h, a, b):
        await peer.close()


async def test_removed_participants_signals_go_nowhere(people):
    space, host, alice, _ = people
    h = await connect(space, host)
    await connect(space, alice)
    await h.ask("participant_remove", user_id=alice.pk)  # answered once the removal committed
    with pytest.raises(services.NotInSpace):
        await db(services.signal_send)(space=space, by=alice, to=host.pk, kind="ice", data={})
    # (rooms.audio tells the host to hang up on a removed person: a "bye", never alice's own frames)
    assert not [f for f in await h.drain(0.2) if f["type"] == "signal" and not f["data"].get("bye")]
    await h.close()


async def test_listeners_hear_the_end_when_the_host_is_gone_past_the_grace(people, settings):
    import datetime as dt

    from django.utils import timezone

    settings.SPACES_HOST_GRACE_SECONDS = 120
    space, host, alice, _ = people
    a = await connect(space, alice)  # the host never came back
    later = timezone.now() + dt.timedelta(seconds=121)
    assert (await db(services.presence_sweep)(now=later))["ended"] == 1
    assert (await a.until("space_ended"))["reason"] == "host_gone"
    assert (await a.ws.receive_output(timeout=2))["code"] == protocol.CLOSE_ENDED
