"""The kept audience (rooms.Audience): a listener's join or leave is one F() UPDATE, never a count
over the audience nor a wait for the Space's lock; the presence sweep recounts it from the
presence rows, which stay the truth.

Real threads with their own database connections: on SQLite the writers take turns (BEGIN
IMMEDIATE); on PostgreSQL (DATABASE_URL) they really run at once."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection, connections, transaction

from rooms import services
from rooms.models import Audience, Connection, GuestConnection, Participant
from rooms.selectors import listener_count, space_snapshot
from tests.factories import make_users
from tests.rooms_support import join, live_space, make_host
from tests.strict import require
from tests.test_rooms_concurrency import race

pytestmark = pytest.mark.django_db(transaction=True)

Role = Participant.Role


def kept(space) -> int:
    return Audience.objects.get(space=space).count


def test_a_join_and_a_leave_move_the_audience_by_one():
    space = live_space()
    listener, first_tab = join(space)
    assert kept(space) == 1
    _, second_tab = join(space, listener)  # another tab of the same person
    assert kept(space) == 1
    services.connection_close(channel_name=first_tab)
    assert kept(space) == 1  # still here in the other tab
    services.connection_close(channel_name=second_tab)
    assert kept(space) == 0


def test_going_on_stage_and_back_moves_the_audience():
    host = make_host()
    space = live_space(host)
    join(space, host)
    listener, _ = join(space)
    assert kept(space) == 1
    services.speaker_invite(space=space, by=host, user_id=listener.pk)
    services.invite_accept(space=space, by=listener)
    assert kept(space) == 0
    services.speaker_move_to_audience(space=space, by=host, user_id=listener.pk)
    assert kept(space) == 1
    services.participant_remove(space=space, by=host, user_id=listener.pk)
    assert kept(space) == 0 == listener_count(space_id=space.pk)


def test_concurrent_joins_and_leaves_keep_the_audience_exact():
    space = live_space()
    people = make_users(24, prefix="storm")
    # Each person opens two tabs at once: the audience is people, not sockets.
    tabs = [(user, f"storm.{uuid.uuid4().hex}") for user in people for _ in range(2)]

    def open_tab(job):
        user, channel = job
        return services.participant_join(space=space, user=user, channel_name=channel, process="storm")

    _, errors = race(open_tab, tabs)
    assert errors == []
    assert kept(space) == 24 == listener_count(space_id=space.pk)
    assert Audience.objects.get(space=space).peak == 24

    # A third of the people close both tabs, a third one of them, all at once.
    closing = [channel for i, (_, channel) in enumerate(tabs) if i < 16 or (16 <= i < 32 and i % 2)]
    _, errors = race(lambda channel: services.connection_close(channel_name=channel), closing)
    assert errors == []
    assert kept(space) == 16 == listener_count(space_id=space.pk)
    assert space_snapshot(space=space, viewer=space.host)["listener_count"] == 16


def test_concurrent_guest_joins_and_leaves_keep_the_audience_exact():
    space = live_space()
    guests = [(uuid.uuid4().hex, f"guest.{i}", f"10.0.0.{i}") for i in range(20)]

    def open_tab(job):
        key, channel, ip = job
        return services.guest_join(space=space, guest_key=key, ip=ip, channel_name=channel, process="p")

    _, errors = race(open_tab, guests)
    assert errors == []
    audience = Audience.objects.get(space=space)
    assert (audience.listeners, audience.guests) == (0, 20)
    _, errors = race(lambda job: services.guest_close(channel_name=job[1]), guests[:7])
    assert errors == []
    assert (
        Audience.objects.get(space=space).guests == 13 == GuestConnection.objects.filter(space=space).count()
    )


def test_the_sweep_corrects_a_drifted_count():
    space = live_space()
    for user in make_users(4, prefix="here"):
        join(space, user)
    # A process killed between its write and its commit hook, say: the kept count is off.
    Audience.objects.filter(space=space).update(listeners=41)
    assert space_snapshot(space=space, viewer=space.host)["listener_count"] == 41
    stats = services.presence_sweep()
    assert stats["recounted"] == 1
    assert kept(space) == 4 == space_snapshot(space=space, viewer=space.host)["listener_count"]
    assert services.presence_sweep()["recounted"] == 0  # nothing drifted since


def test_a_space_without_a_kept_audience_gets_one_at_its_first_join():
    space = live_space()
    Audience.objects.filter(space=space).delete()  # a Space from before audiences were kept
    join(space)
    join(space)
    assert kept(space) == 2


@pytest.mark.postgres
def test_a_listener_join_does_not_wait_for_a_stage_action_holding_the_space():
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    host = make_host()
    space = live_space(host)
    join(space, host)
    asker, newcomer, leaver = make_users(3, prefix="lock")
    join(space, asker)
    _, leaver_tab = join(space, leaver)
    held, release = threading.Event(), threading.Event()

    def stage_action_in_progress():
        # Holds the Space exactly as every stage action does (invite, accept, mute, co-host).
        try:
            with transaction.atomic():
                services._lock(space.pk)
                held.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    def in_thread(fn) -> tuple[threading.Thread, dict]:
        out: dict = {}

        def run():
            try:
                out["result"] = fn()
            except Exception as exc:  # noqa: BLE001 - asserted below
                out["error"] = exc
            finally:
                connections.close_all()

        thread = threading.Thread(target=run)
        thread.start()
        return thread, out

    holder = threading.Thread(target=stage_action_in_progress)
    holder.start()
    assert held.wait(timeout=10)
    try:
        # Another stage action waits for the lock: the lock really is held.
        hand, hand_out = in_thread(lambda: services.hand_raise(space=space, by=asker))
        # A listener's arrival, a guest's and a listener's leave do not.
        arrivals = [
            in_thread(lambda: join(space, newcomer)),
            in_thread(
                lambda: services.guest_join(
                    space=space, guest_key="g" * 32, ip="10.1.1.1", channel_name="guest.lock", process="p"
                )
            ),
            in_thread(lambda: services.connection_close(channel_name=leaver_tab)),
        ]
        for thread, out in arrivals:
            thread.join(timeout=5)
            assert not thread.is_alive(), "a listener's join or leave waited for the Space's lock"
            assert "error" not in out, out.get("error")
        hand.join(timeout=1)
        assert hand.is_alive(), "the stage action should have waited for the lock"
    finally:
        release.set()
        holder.join(timeout=10)
    hand.join(timeout=10)
    assert "error" not in hand_out
    assert kept(space) == 3 == listener_count(space_id=space.pk)  # asker, newcomer, one guest
    assert Connection.objects.filter(space=space, user=leaver).count() == 0
