"""Moderation against live Spaces: blocks, suspensions and ending a Space, seen from real websockets
(the project's ASGI app through channels' WebsocketCommunicator), pages and the audio relay."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connections
from django.urls import reverse

from accounts.groups import MODERATORS
from accounts.services import NotEligible, hosting_ensure_allowed
from moderation import services
from moderation.models import AuditLog
from rooms import protocol
from rooms import services as room_services
from rooms.access import entry_refusal
from rooms.models import Participant, Space
from tests.factories import PASSWORD, UserFactory
from tests.rooms_support import connect, join, live_space, make_host, seat

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()
    # The websocket tests reach the database from asgiref's sync thread; close its connection so
    # PostgreSQL can drop the test database at the end.
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


def moderator():
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=MODERATORS))
    return user


async def closed_with(peer, timeout: float = 1.0) -> tuple[int, list[dict]]:
    """Frames received until the server closes the socket, and the close code. Fails past `timeout`."""
    frames = []
    deadline = time.monotonic() + timeout
    while True:
        output = await peer.ws.receive_output(timeout=max(deadline - time.monotonic(), 0.01))
        if output["type"] == "websocket.close":
            return output.get("code"), frames
        if output["type"] == "websocket.send":
            import json

            frames.append(json.loads(output["text"]))


# --- host blocks -----------------------------------------------------------------------


def test_a_blocked_user_is_refused_entry_to_every_space_of_that_host_only():
    host, pest = make_host(), UserFactory()
    services.host_block(host=host, user=pest)
    first = live_space(host)
    assert "blocked" in entry_refusal(space=first, user=pest)
    room_services.space_end(space=first, by=host)
    assert "blocked" in entry_refusal(space=live_space(host, title="Later"), user=pest)
    assert entry_refusal(space=live_space(), user=pest) is None
    services.host_unblock(host=host, user=pest)
    assert entry_refusal(space=Space.objects.get(title="Later"), user=pest) is None


def test_a_blocked_user_is_refused_the_space_page(client):
    host, pest = make_host(), UserFactory()
    space = live_space(host, title='<script>alert("x")</script>')
    services.host_block(host=host, user=pest)
    client.force_login(pest)
    page = client.get(space.get_absolute_url())
    assert page.status_code == 403
    html = page.content.decode()
    assert "blocked you" in html
    assert '<script>alert("x")</script>' not in html


async def test_a_blocked_user_is_refused_by_the_websocket():
    host, pest = await database_sync_to_async(lambda: (make_host(), UserFactory()))()
    space = await database_sync_to_async(live_space)(host)
    await database_sync_to_async(services.host_block)(host=host, user=pest)
    peer = await connect(space, pest, expect_snapshot=False)
    assert peer.first == {"type": "error", "code": "entry_refused", "message": peer.first["message"]}
    assert "blocked" in peer.first["message"]
    code, _ = await closed_with(peer)
    assert code == protocol.CLOSE_REFUSED


async def test_blocking_someone_in_the_hosts_live_space_removes_them_and_closes_their_socket():
    host, pest = await database_sync_to_async(lambda: (make_host(), UserFactory()))()
    space = await database_sync_to_async(live_space)(host)
    host_peer = await connect(space, host)
    pest_peer = await connect(space, pest)
    await host_peer.drain()
    await database_sync_to_async(services.host_block)(host=host, user=pest)
    code, frames = await closed_with(pest_peer)
    assert code == protocol.CLOSE_REMOVED
    assert await host_peer.until("participant_left", user_id=pest.pk, reason="removed")
    participant = await database_sync_to_async(Participant.objects.get)(space=space, user=pest)
    assert participant.removed_at is not None and participant.removed_by_id == host.pk
    again = await connect(space, pest, expect_snapshot=False)
    assert again.first["code"] == "entry_refused"
    await host_peer.close()


def test_a_host_removing_someone_is_audited():
    host, pest = make_host(), UserFactory()
    space = live_space(host, title="Quiet room")
    join(space, pest)
    room_services.participant_remove(space=space, by=host, user_id=pest.pk)
    row = AuditLog.objects.get()
    assert (row.action, row.actor_id, row.target_type, row.target_id) == (
        "participant_remove",
        host.pk,
        "account",
        pest.pk,
    )
    assert row.note == "Removed from “Quiet room”"


def test_a_blocked_user_cannot_exchange_audio_signals():
    host, pest = make_host(), UserFactory()
    space = live_space(host)
    join(space, host)
    join(space, pest)
    seat(space, pest, Participant.Role.SPEAKER)
    offer = {"type": "offer", "sdp": "v=0"}
    room_services.signal_send(space=space, by=pest, to=host.pk, kind="offer", data=offer)  # allowed before
    services.host_block(host=host, user=pest)
    with pytest.raises(room_services.RoomError):
        room_services.signal_send(space=space, by=pest, to=host.pk, kind="offer", data=offer)
    with pytest.raises(room_services.RoomError):
        room_services.signal_send(space=space, by=host, to=pest.pk, kind="offer", data=offer)
    with pytest.raises(room_services.EntryRefused, match="removed"):
        join(space, pest)
    room_services.space_end(space=space, by=host)
    with pytest.raises(room_services.EntryRefused, match="blocked"):
        join(live_space(host, title="Next time"), pest)


# --- ending a Space ----------------------------------------------------------------------


async def test_a_moderator_ends_a_live_space_clients_are_told_and_it_cannot_restart():
    host, listener, mod = await database_sync_to_async(lambda: (make_host(), UserFactory(), moderator()))()
    space = await database_sync_to_async(live_space)(host)
    peer = await connect(space, listener)
    await database_sync_to_async(services.space_end_by_moderator)(space=space, by=mod, note="Hate speech")
    code, frames = await closed_with(peer)
    assert {"type": "space_ended", "reason": "moderator"} in frames
    assert code == protocol.CLOSE_ENDED
    space = await database_sync_to_async(Space.objects.get)(pk=space.pk)
    assert (space.state, space.ended_reason) == ("ended", "moderator")
    with pytest.raises(room_services.NotLive):
        await database_sync_to_async(room_services.space_start)(space=space, by=host)
    row = await database_sync_to_async(AuditLog.objects.get)()
    assert (row.action, row.actor_id, row.target_type, row.target_id, row.note) == (
        "space_end",
        mod.pk,
        "space",
        space.pk,
        "Hate speech",
    )


def test_ending_a_space_that_is_not_live_changes_nothing():
    host, mod = make_host(), moderator()
    space = live_space(host)
    room_services.space_end(space=space, by=host)
    with pytest.raises(ValidationError, match="not live"):
        services.space_end_by_moderator(space=space, by=mod)
    assert not AuditLog.objects.exists()


def test_only_moderators_end_other_peoples_spaces():
    space = live_space()
    for outsider in (UserFactory(), UserFactory(is_staff=True)):
        with pytest.raises(room_services.PermissionDenied):
            services.space_end_by_moderator(space=space, by=outsider)
    space.refresh_from_db()
    assert space.state == "live"


# --- suspension -------------------------------------------------------------------------


async def test_a_suspended_users_sockets_close_within_a_second_and_reconnecting_is_refused():
    mod, other_host, user = await database_sync_to_async(lambda: (moderator(), make_host(), make_host()))()
    their_space = await database_sync_to_async(live_space)(user, title="Theirs")
    elsewhere = await database_sync_to_async(live_space)(other_host, title="Elsewhere")
    own_peer = await connect(their_space, user)
    listening = await connect(elsewhere, user)
    host_peer = await connect(elsewhere, other_host)
    await listening.drain()

    started = time.monotonic()
    await database_sync_to_async(services.account_suspend)(user=user, by=mod, note="Spam ring")
    code, frames = await closed_with(listening, timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert code == protocol.CLOSE_FORCED
    assert any("suspended" in f.get("message", "") for f in frames)
    own_code, _ = await closed_with(own_peer, timeout=1.0)
    assert own_code in (protocol.CLOSE_FORCED, protocol.CLOSE_ENDED)
    assert await host_peer.until("participant_left", user_id=user.pk, reason="removed")

    @database_sync_to_async
    def state():
        return (
            Space.objects.get(pk=their_space.pk).state,
            Participant.objects.get(space=elsewhere, user=user).removed_at is not None,
            list(AuditLog.objects.values_list("action", "target_id", "note")),
        )

    their_state, removed, audit = await state()
    assert their_state == "ended" and removed
    assert sorted(audit) == [
        ("account_suspend", user.pk, "Spam ring"),
        ("participant_remove", user.pk, "Removed from “Elsewhere”"),
        ("space_end", their_space.pk, f"Its host {user} was suspended."),
    ]

    # Signed out by the suspension: the old session cookie is nobody's now, at most a guest's.
    again = await connect(elsewhere, user, expect_snapshot=False)
    assert again.first["type"] == "snapshot" and again.first["me"]["guest"] is True
    assert again.first["me"]["user_id"] is None
    await again.close()
    await host_peer.close()


def test_a_suspended_user_cannot_sign_in_host_or_join_until_reinstated(client):
    mod, user = moderator(), make_host()
    services.account_suspend(user=user, by=mod)
    assert not client.login(username=user.username, password=PASSWORD)
    signed_in = client.post(reverse("account_login"), {"login": user.username, "password": PASSWORD})
    assert "_auth_user_id" not in client.session and signed_in.status_code == 403
    assert "Your account is suspended" in signed_in.content.decode()
    with pytest.raises(NotEligible, match="suspended"):
        hosting_ensure_allowed(user=user)
    assert "suspended" in entry_refusal(space=live_space(), user=user)

    services.account_reinstate(user=user, by=mod, note="Appeal upheld")
    user.refresh_from_db()
    assert not user.is_suspended and user.is_active
    assert client.login(username=user.username, password=PASSWORD)
    hosting_ensure_allowed(user=user)
    assert list(AuditLog.objects.order_by("id").values_list("action", "note")) == [
        ("account_suspend", ""),
        ("account_reinstate", "Appeal upheld"),
    ]


def test_a_suspended_user_cannot_buy_a_ticket_or_speak_until_reinstated():
    from django.core.exceptions import PermissionDenied

    from tests.test_ticketing_support import begin, ticketed_space

    mod, buyer = moderator(), UserFactory()
    space = ticketed_space()
    services.account_suspend(user=buyer, by=mod)
    buyer.refresh_from_db()
    with pytest.raises(PermissionDenied, match="suspended"):
        begin(space, buyer)
    stage = live_space()
    with pytest.raises(room_services.EntryRefused, match="suspended"):
        join(stage, buyer)  # no way in, so no way onto the stage
    services.account_reinstate(user=buyer, by=mod)
    buyer.refresh_from_db()
    join(stage, buyer)
    room_services.hand_raise(space=stage, by=buyer)


def test_moderators_cannot_suspend_superusers_or_themselves():
    mod = moderator()
    boss = UserFactory(is_staff=True, is_superuser=True)
    with pytest.raises(room_services.PermissionDenied):
        services.account_suspend(user=boss, by=mod)
    with pytest.raises(room_services.PermissionDenied):
        services.account_suspend(user=mod, by=mod)
    boss.refresh_from_db()
    assert not boss.is_suspended and not AuditLog.objects.exists()


def test_admin_suspend_and_reinstate_actions_go_through_moderation_and_are_audited(client):
    mod, user = moderator(), UserFactory()
    space = live_space()
    join(space, user)
    client.force_login(mod)
    url = reverse("admin:accounts_user_changelist")
    ask = client.post(url, {"action": "suspend_accounts", "_selected_action": [user.pk]})
    assert 'name="note"' in ask.content.decode()
    client.post(
        url,
        {"action": "suspend_accounts", "_selected_action": [user.pk], "note_confirmed": "yes", "note": "x"},
    )
    user.refresh_from_db()
    assert user.is_suspended
    assert Participant.objects.get(space=space, user=user).removed_at is not None
    client.post(
        url,
        {"action": "reinstate_accounts", "_selected_action": [user.pk], "note_confirmed": "yes", "note": ""},
    )
    user.refresh_from_db()
    assert not user.is_suspended
    assert list(AuditLog.objects.order_by("id").values_list("action", "actor")) == [
        ("participant_remove", mod.pk),
        ("account_suspend", mod.pk),
        ("account_reinstate", mod.pk),
    ]


# --- the moderators' list of Spaces -------------------------------------------------------


def sell_tickets(space: Space, n: int) -> None:
    """Sold tickets as ticketing leaves them (setup only; selling is tested in test_ticketing.py)."""
    from django.utils import timezone

    from ticketing.models import Hold, Ticket

    split = {
        "price_cents": 500,
        "currency": "usd",
        "commission_bps": 300,
        "commission_cents": 15,
        "host_share_cents": 485,
    }
    for _ in range(n):
        buyer = UserFactory()
        hold = Hold.objects.create(
            space=space, buyer=buyer, status="completed", expires_at=timezone.now(), **split
        )
        Ticket.objects.create(space=space, holder=buyer, hold=hold, **split)


def test_spaces_list_shows_live_first_with_listeners_tickets_and_reports(
    client, django_assert_max_num_queries
):
    ended = live_space(title="Yesterday")
    room_services.space_end(space=ended, by=ended.host)
    spaces = [live_space(title=f'<b>Live {i}</b><script>alert("x")</script>') for i in range(8)]
    busy = spaces[0]
    for _ in range(3):
        join(busy, UserFactory())
    sell_tickets(busy, 2)
    for _ in range(4):
        services.report_create(reporter=UserFactory(), space=busy, reason="spam")
    client.force_login(moderator())
    with django_assert_max_num_queries(12):
        page = client.get(reverse("admin:moderation_livespace_changelist"))
    rows = list(page.context["cl"].result_list)
    assert [s.state for s in rows] == ["live"] * 8 + ["ended"]
    row = next(s for s in rows if s.pk == busy.pk)
    assert (row.n_listeners, row.n_tickets, row.n_reports) == (3, 2, 4)
    html = page.content.decode()
    assert "<script>alert" not in html and "<b>Live" not in html


def test_end_space_now_from_the_admin_ends_it_and_audits(client):
    mod = moderator()
    space = live_space()
    client.force_login(mod)
    url = reverse("admin:moderation_livespace_changelist")
    ask = client.post(url, {"action": "end_spaces", "_selected_action": [space.pk]})
    assert 'name="note"' in ask.content.decode()
    space.refresh_from_db()
    assert space.state == "live"
    confirmed = {"action": "end_spaces", "_selected_action": [space.pk], "note_confirmed": "yes", "note": "n"}
    client.post(url, confirmed)
    space.refresh_from_db()
    assert (space.state, space.ended_reason) == ("ended", "moderator")
    assert AuditLog.objects.get().action == "space_end"


def test_staff_outside_the_moderators_group_cannot_end_spaces(client):
    space = live_space()
    client.force_login(UserFactory(is_staff=True))
    url = reverse("admin:moderation_livespace_changelist")
    assert client.get(url).status_code == 403
    client.post(url, {"action": "end_spaces", "_selected_action": [space.pk], "note_confirmed": "yes"})
    space.refresh_from_db()
    assert space.state == "live"
