"""Presence: counts stay right when sockets vanish without a goodbye, and a Space whose host is gone
ends by itself after the grace period."""

import asyncio
import datetime as dt

import pytest
from django.utils import timezone

from rooms import services, tasks
from rooms.models import Connection, Participant, Space
from rooms.selectors import listener_count, space_snapshot
from tests.factories import make_users
from tests.rooms_support import join, live_space, make_host, seat

pytestmark = pytest.mark.django_db

Role = Participant.Role


async def reaches(read, expected, *, timeout: float) -> bool:
    """Whether `read()` (a database read, run in a thread) gives `expected` within `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await asyncio.to_thread(read) == expected:
            return True
        await asyncio.sleep(0.1)
    return False


def age(rows, seconds: int) -> None:
    """Make connection rows look last refreshed `seconds` ago (their process stopped)."""
    rows.update(seen_at=timezone.now() - dt.timedelta(seconds=seconds))


def test_listener_count_is_people_not_tabs():
    space = live_space()
    listener, _ = join(space)
    join(space, listener)  # a second tab
    join(space)
    assert listener_count(space_id=space.pk) == 2


def test_sockets_of_a_dead_process_stop_counting_once_stale(settings):
    settings.SPACES_PRESENCE_STALE_SECONDS = 60
    space = live_space()
    for user in make_users(5, prefix="dead"):
        join(space, user, process="killed-daphne")
    for user in make_users(3, prefix="alive"):
        join(space, user, process="healthy-daphne")
    assert listener_count(space_id=space.pk) == 8
    age(Connection.objects.filter(process="killed-daphne"), 61)
    assert listener_count(space_id=space.pk) == 3  # the exact recount, before any sweep
    # The kept count (what the room sees) holds until the sweep, which corrects it.
    assert space_snapshot(space=space, viewer=space.host)["listener_count"] == 8
    services.presence_sweep()
    assert space_snapshot(space=space, viewer=space.host)["listener_count"] == 3


def test_heartbeat_keeps_a_process_sockets_fresh(settings):
    settings.SPACES_PRESENCE_STALE_SECONDS = 60
    space = live_space()
    _, channel = join(space, process="p1")
    age(Connection.objects.all(), 50)
    assert services.connection_heartbeat(process="p1", channel_names=[channel]) == 1
    services.presence_sweep(now=timezone.now() + dt.timedelta(seconds=30))
    assert listener_count(space_id=space.pk) == 1


def test_heartbeat_leaves_a_row_whose_socket_the_process_no_longer_holds(settings, monkeypatch):
    """A socket whose goodbye never ran (its consumer cancelled by the server mid-join) keeps no row
    alive: the heartbeat refreshes only the sockets the process holds, so the sweep clears it."""
    settings.SPACES_PRESENCE_STALE_SECONDS = 60
    monkeypatch.setattr(services, "HEARTBEAT_BATCH", 2)  # several UPDATEs, as with thousands
    space = live_space()
    held = [join(space, process="p1")[1] for _ in range(3)]
    orphan, _ = join(space, process="p1")
    age(Connection.objects.all(), 50)
    assert services.connection_heartbeat(process="p1", channel_names=held) == 3
    stats = services.presence_sweep(now=timezone.now() + dt.timedelta(seconds=30))
    assert (stats["stale"], stats["gone"]) == (1, 1)
    assert set(Connection.objects.values_list("channel_name", flat=True)) == set(held)
    assert Participant.objects.get(space=space, user=orphan).left_at is not None
    assert space_snapshot(space=space, viewer=space.host)["listener_count"] == 3


def test_sweep_deletes_stale_rows_and_marks_people_gone(settings):
    settings.SPACES_PRESENCE_STALE_SECONDS = 60
    space = live_space()
    gone, _ = join(space, process="killed")
    services.hand_raise(space=space, by=gone)
    stayed, _ = join(space, process="alive")
    age(Connection.objects.filter(process="killed"), 120)
    stats = services.presence_sweep()
    assert stats["stale"] == 1 and stats["gone"] == 1
    p = Participant.objects.get(space=space, user=gone)
    assert p.left_at is not None and p.hand_raised_at is None
    assert Participant.objects.get(space=space, user=stayed).left_at is None
    assert services.presence_sweep()["stale"] == 0  # idempotent


def test_speaker_gone_past_the_grace_loses_the_seat(settings):
    settings.SPACES_PRESENCE_STALE_SECONDS = 60
    settings.SPACES_HOST_GRACE_SECONDS = 120
    host = make_host()
    space = live_space(host)
    join(space, host, process="alive")
    speaker, _ = join(space, process="killed")
    seat(space, speaker, Role.SPEAKER)
    age(Connection.objects.filter(process="killed"), 100)
    services.presence_sweep()
    assert Participant.objects.get(space=space, user=speaker).role == Role.SPEAKER  # inside the grace
    Participant.objects.filter(user=speaker).update(left_at=timezone.now() - dt.timedelta(seconds=121))
    assert services.presence_sweep()["unseated"] == 1
    assert Participant.objects.get(space=space, user=speaker).role == Role.LISTENER


def test_space_ends_when_the_host_is_gone_longer_than_the_grace(settings):
    settings.SPACES_PRESENCE_STALE_SECONDS = 60
    settings.SPACES_HOST_GRACE_SECONDS = 120
    host = make_host()
    space = live_space(host)
    join(space, host, process="killed")
    _, alive_channel = join(space, process="alive")
    age(Connection.objects.filter(process="killed"), 90)
    services.presence_sweep()  # host marked gone (last seen 90 s ago): inside the grace
    assert Space.objects.get(pk=space.pk).state == Space.State.LIVE
    later = timezone.now() + dt.timedelta(seconds=31)
    services.connection_heartbeat(process="alive", channel_names=[alive_channel])
    stats = services.presence_sweep(now=later)
    assert stats["ended"] == 1
    space.refresh_from_db()
    assert (space.state, space.ended_reason) == (Space.State.ENDED, "host_gone")


def test_host_who_reconnects_within_the_grace_keeps_the_space(settings):
    settings.SPACES_HOST_GRACE_SECONDS = 120
    host = make_host()
    space = live_space(host)
    _, channel = join(space, host)
    services.connection_close(channel_name=channel)
    Participant.objects.filter(user=host).update(left_at=timezone.now() - dt.timedelta(seconds=100))
    join(space, host)  # back
    services.presence_sweep(now=timezone.now() + dt.timedelta(seconds=60))
    assert Space.objects.get(pk=space.pk).state == Space.State.LIVE


def test_host_who_never_connected_ends_after_the_grace_from_the_start(settings):
    settings.SPACES_HOST_GRACE_SECONDS = 120
    live_space()
    assert services.presence_sweep()["ended"] == 0
    assert services.presence_sweep(now=timezone.now() + dt.timedelta(seconds=121))["ended"] == 1


def test_celery_task_runs_the_sweep(settings):
    settings.SPACES_HOST_GRACE_SECONDS = 0
    space = live_space()
    Space.objects.filter(pk=space.pk).update(started_at=timezone.now() - dt.timedelta(seconds=5))
    assert tasks.presence_sweep()["ended"] == 1


def test_beat_schedule_runs_the_sweep(settings):
    assert settings.CELERY_BEAT_SCHEDULE["rooms-presence-sweep"]["task"] == "rooms.tasks.presence_sweep"


# --- a real daphne killed with its sockets open ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_killed_daphne_listeners_stop_counting_and_the_survivor_is_told(settings):
    """Two daphne processes serve one Space; one is killed -9 with two listeners on it. The other
    process keeps its own listener fresh, and once the dead process's rows are stale they stop
    counting, the sweep removes them and the surviving socket hears the new count."""
    import asyncio
    import json
    import signal

    from websockets.asyncio.client import connect

    from tests.conftest import start_asgi_server, stop_process
    from tests.rooms_support import session_cookie

    settings.SPACES_PRESENCE_STALE_SECONDS = 3
    env = {"SPACES_PRESENCE_STALE_SECONDS": "3", "SPACES_PRESENCE_HEARTBEAT_SECONDS": "1"}
    doomed, survivor = start_asgi_server(env, name="doomed"), start_asgi_server(env, name="survivor")
    host = make_host()
    space = live_space(host)
    people = make_users(3, prefix="ws")
    cookies = {u.pk: session_cookie(u) for u in [host, *people]}

    async def scenario():
        def open_as(server, user):
            return connect(
                server.ws_url(f"/ws/spaces/{space.pk}/"),
                additional_headers=[("Cookie", f"sessionid={cookies[user.pk]}")],
                origin=server.url,
            )

        watcher = await open_as(survivor, people[0])
        assert json.loads(await watcher.recv())["type"] == "snapshot"
        victims = [await open_as(doomed, u) for u in people[1:]]
        for v in victims:
            assert json.loads(await v.recv())["type"] == "snapshot"
        assert await reaches(lambda: listener_count(space_id=space.pk), 3, timeout=5)
        doomed.proc.send_signal(signal.SIGKILL)  # no goodbye, no disconnect handler
        # Past the stale age the dead process's rows stop counting; the survivor's heartbeat kept its own.
        assert await reaches(lambda: listener_count(space_id=space.pk), 1, timeout=10)
        # The survivor's heartbeat also sweeps (as Celery beat would): the dead rows go, the room is told.
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            frame = json.loads(
                await asyncio.wait_for(watcher.recv(), deadline - asyncio.get_running_loop().time())
            )
            if frame["type"] == "listener_count" and frame["count"] == 1:
                break
        assert await reaches(Connection.objects.filter(space=space).count, 1, timeout=10)
        await watcher.close()

    try:
        asyncio.run(scenario())
    finally:
        stop_process(doomed.proc)
        stop_process(survivor.proc)
