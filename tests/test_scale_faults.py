"""Scale-out and faults with real processes on loopback: two daphne processes sharing PostgreSQL and
Redis; a daphne killed mid-Space; Redis restarted; PostgreSQL cut off for a moment."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from django.db import connection

from rooms import services
from rooms.models import Space
from tests.conftest import start_asgi_server, stop_process
from tests.factories import UserFactory
from tests.scale_tools import CuttableProxy, RedisServer, SpaceClient, kill_hard, session_cookie
from tests.strict import require, require_binary

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def redis_server():
    require_binary("redis-server")
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def two_processes(redis_server):
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    env = {"REDIS_URL": redis_server.url}
    a = start_asgi_server(env, name="daphne-a")
    b = start_asgi_server(env, name="daphne-b")
    yield a, b
    for server in (a, b):
        stop_process(server.proc)


@pytest.fixture
def live_space():
    host = UserFactory(username="host", hosting_granted=True)
    listener = UserFactory(username="listener")
    space = services.space_create(host=host, title="Across processes", topics=[], speak_policy="everyone")
    return space, host, listener


def ws_base(server) -> str:
    return server.url.replace("http://", "ws://")


def test_events_cross_processes_and_counts_stay_right(two_processes, live_space):
    a, b = two_processes
    space, host, listener = live_space
    host_ws = SpaceClient(ws_base(a), space.pk, session_cookie(host))
    host_ws.next("snapshot")
    listener_ws = SpaceClient(ws_base(b), space.pk, session_cookie(listener))
    assert listener_ws.next("snapshot")["space"]["id"] == space.pk
    # The host, on process A, hears of the listener who joined on process B.
    host_ws.next("listener_count", where=lambda m: m["count"] == 1)
    host_ws.send(type="unmute_self")
    assert listener_ws.next("muted")["muted"] is False
    # A second tab of the same listener on the other process: one listener, not two.
    second_tab = SpaceClient(ws_base(a), space.pk, session_cookie(listener))
    assert second_tab.next("snapshot")["listener_count"] == 1
    host_ws.send(type="mute_self")
    assert second_tab.next("muted")["muted"] is True
    assert listener_ws.next("muted")["muted"] is True
    for ws in (host_ws, listener_ws, second_tab):
        ws.close()


def test_a_killed_daphne_loses_nothing(two_processes, live_space):
    a, b = two_processes
    space, host, listener = live_space
    host_ws = SpaceClient(ws_base(b), space.pk, session_cookie(host))
    host_ws.next("snapshot")
    listener_ws = SpaceClient(ws_base(a), space.pk, session_cookie(listener))
    listener_ws.next("snapshot")
    listener_ws.send(type="hand_raise")
    host_ws.next("hand_raised")

    kill_hard(a.proc)
    # While the listener is away, the stage changes.
    host_ws.send(type="unmute_self")
    host_ws.next("muted")
    # The browser reconnects to the surviving process and resyncs from the snapshot.
    again = SpaceClient(ws_base(b), space.pk, session_cookie(listener))
    snapshot = again.next("snapshot")
    assert snapshot["me"]["hand_raised"] is True
    assert [p["muted"] for p in snapshot["stage"] if p["user_id"] == host.pk] == [False]
    assert snapshot["listener_count"] == 1
    host_ws.close()
    again.close()


def test_redis_restart_websockets_recover(two_processes, redis_server, live_space):
    a, b = two_processes
    space, host, listener = live_space
    host_ws = SpaceClient(ws_base(a), space.pk, session_cookie(host))
    host_ws.next("snapshot")
    listener_ws = SpaceClient(ws_base(b), space.pk, session_cookie(listener))
    listener_ws.next("snapshot")

    redis_server.stop()
    redis_server.start()  # same port, empty: Redis kept nothing, the database has everything

    # Events flow again once the layer has reconnected; a client that reconnects gets the truth.
    deadline = time.monotonic() + 20
    delivered = False
    muted = True
    while time.monotonic() < deadline and not delivered:
        muted = not muted
        host_ws.send(type="mute_self" if muted else "unmute_self")
        try:
            listener_ws.next("muted", timeout=1.0, where=lambda m, want=muted: m["muted"] is want)
            delivered = True
        except TimeoutError:
            continue
    assert delivered, "events never flowed again after Redis came back"
    fresh = SpaceClient(ws_base(b), space.pk, session_cookie(listener))
    snap = fresh.next("snapshot")
    assert [p["muted"] for p in snap["stage"] if p["user_id"] == host.pk] == [muted]
    for ws in (host_ws, listener_ws, fresh):
        ws.close()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:  # noqa: S310 - loopback only
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_postgres_unreachable_gives_a_clear_503_and_recovers(live_space):
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    settings_dict = connection.settings_dict
    proxy = CuttableProxy(settings_dict.get("HOST") or "127.0.0.1", int(settings_dict.get("PORT") or 5432))
    user = settings_dict.get("USER") or "postgres"
    server = start_asgi_server(
        {"DATABASE_URL": f"postgres://{user}@127.0.0.1:{proxy.port}/{settings_dict['NAME']}"},
        name="daphne-pg",
    )
    try:
        status, body = get(server.url + "/u/host/")
        assert status == 200
        proxy.cut()
        status, body = get(server.url + "/u/host/")
        assert status == 503
        assert "We'll be right back" in body
        assert "Traceback" not in body
        proxy.restore()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status, body = get(server.url + "/u/host/")
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, body[:300]
    finally:
        stop_process(server.proc)
        proxy.cut()
    assert Space.objects.filter(pk=live_space[0].pk, state=Space.State.LIVE).exists()
