"""Fan-out latency of a Space: N listener sockets, the host toggles mute, how long until every
listener hears it.

    .venv/bin/python bench/ws_fanout.py --listeners 5000

Runs, in one go and with the same client code:

1. the real stack: a daphne subprocess serving spaces_project.asgi against a fresh SQLite file,
   N signed-in listeners in one live Space, the host sending ``unmute_self``/``mute_self``;
   a delivery's latency is from the host's send to a listener's receipt of the ``muted`` event
   (so it includes the service's database write);
2. the floor: a minimal asyncio ``websockets`` server in a subprocess that broadcasts each message
   it gets from the "host" to every other socket (``websockets.broadcast``);
3. daphne's floor: the same relay as a bare ASGI application on daphne, no Django
   (bench/broadcast_asgi.py): what the server itself costs per frame;
4. with ``--groups``: Channels' textbook fan-out for comparison — a daphne serving a bare consumer
   per socket in one channel-layer group (bench/groups_asgi.py), ``group_send`` per event.

Prints one JSON line. Mind the machine: every socket is a file descriptor on both ends (the soft
limit is raised here), and the clients share the CPU with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    free_port,
    origin_for,
    percentile,
    signed_in_session_data,
    signed_in_socket,
    wait_for_port,
)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()  # daphne closing thousands of sockets one by one; nothing left to measure
        proc.wait(timeout=10)


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, needed)) if hard != resource.RLIM_INFINITY else max(soft, needed)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- the floor: the least a Python websocket server can do ------------------------------------


async def serve_floor(port: int) -> None:
    from websockets.asyncio.server import broadcast, serve

    clients: set = set()

    async def handler(ws):
        await ws.send('{"type":"hello"}')  # as a Space socket's snapshot: the client waits for it
        clients.add(ws)
        try:
            async for message in ws:
                broadcast([c for c in clients if c is not ws], message)
        finally:
            clients.discard(ws)

    async with serve(handler, "127.0.0.1", port, compression=None, max_size=2**16, ping_interval=None):
        await asyncio.Future()


# --- the real stack: data and server ------------------------------------------------------------


def prepare_database(db_path: Path, listeners: int) -> tuple[int, str, list[str]]:
    """Migrate a fresh SQLite file and seed a host, N listeners with sessions and one live Space."""
    env = {**os.environ, "DEBUG": "1", "SQLITE_PATH": str(db_path)}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    os.environ.update(
        {"DEBUG": "1", "SQLITE_PATH": str(db_path), "DJANGO_SETTINGS_MODULE": "spaces_project.settings"}
    )
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from accounts.models import User
    from rooms import services

    password = make_password("bench-password-1")
    host = User.objects.create(username="bench_host", password=password, hosting_granted=True)
    users = User.objects.bulk_create(
        [User(username=f"bench_l{i}", password=password) for i in range(listeners)], batch_size=1000
    )
    users = list(User.objects.filter(username__startswith="bench_l").order_by("pk"))
    expire = timezone.now() + timezone.timedelta(days=1)
    store = SessionStore()
    keys, sessions = [], []
    for user in [host, *users]:
        key = f"bench{user.pk:027d}"  # 32 characters, unique
        data = signed_in_session_data(user)
        sessions.append(Session(session_key=key, session_data=store.encode(data), expire_date=expire))
        keys.append(key)
    Session.objects.bulk_create(sessions, batch_size=1000)
    space = services.space_create(host=host, title="Fan-out benchmark")
    return space.pk, keys[0], keys[1:]


def start_daphne(port: int, env_extra: dict[str, str], app: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DEBUG": "1", **env_extra}
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "--ping-interval", "3600", app],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, proc)
    return proc


# --- the clients (the same for every server) --------------------------------------------------------


class Crowd:
    """N listener sockets that timestamp the arrival of each numbered event."""

    def __init__(self, marker: str, key: str) -> None:
        self.marker = marker  # substring that identifies the benchmark's event cheaply
        self.key = key  # field holding the event's number
        self.sockets: list = []
        self.arrivals: dict[int, list[float]] = {}
        self.expected: int | None = None
        self.done = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    async def open(
        self,
        url: str | list[str],
        headers: list[list[tuple[str, str]]] | None,
        count: int,
        concurrency: int = 16,
    ) -> int:
        """Open `count` sockets (`headers[i]` for the i-th; with several URLs, round-robin over them);
        returns how many connected."""
        urls = [url] if isinstance(url, str) else url
        from websockets.asyncio.client import connect

        sem = asyncio.Semaphore(concurrency)

        async def one(i: int):
            async with sem:
                for attempt in range(3):
                    try:
                        ws = await connect(
                            urls[i % len(urls)],
                            additional_headers=headers[i] if headers else None,
                            origin=origin_for(urls[i % len(urls)]),
                            compression=None,
                            max_size=2**20,
                            ping_interval=None,
                            open_timeout=900,
                            max_queue=None,
                        )
                        # In: a Space socket is accepted before its join, so a listener counts
                        # once its first frame (the snapshot; the floor's hello) has come.
                        await asyncio.wait_for(ws.recv(), 900)
                        break
                    except Exception:
                        if attempt == 2:
                            return
                        await asyncio.sleep(0.5)
                self.sockets.append(ws)
                self.tasks.append(asyncio.create_task(self._read(ws)))

        await asyncio.gather(*(one(i) for i in range(count)))
        return len(self.sockets)

    async def _read(self, ws) -> None:
        marker, key = self.marker, self.key
        try:
            async for message in ws:
                if marker in message:
                    now = time.monotonic()
                    number = json.loads(message)[key]
                    got = self.arrivals.setdefault(number, [])
                    got.append(now)
                    if self.expected is not None and len(got) >= self.expected:
                        self.done.set()
        except Exception:
            return

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


async def measure(crowd: Crowd, trigger, numbers: list[int], timeout: float = 60) -> dict:
    """Fire each event and wait until every listener has it: every delivery's latency (ms), each
    event's first and last delivery, and how many events did not reach everyone."""
    from rooms.rules import FRAME_LIMITS

    # The host may toggle their microphone only so often (FRAME_LIMITS["mute"]); a refused toggle
    # would wait out its timeout. With a 10 % margin; the floor is paced the same.
    mute = FRAME_LIMITS["mute"]
    toggle_every_s = 1.1 * mute.seconds / mute.count
    latencies: list[float] = []
    per_event: list[tuple[float, float]] = []  # (first, last) delivery of each event, ms
    incomplete = 0
    crowd.expected = len(crowd.sockets)
    if not crowd.expected:
        raise RuntimeError("no listener could connect; see the server log (--keep)")
    for number in numbers:
        crowd.done.clear()
        t0 = time.monotonic()
        await trigger(number)
        try:
            await asyncio.wait_for(crowd.done.wait(), timeout)
        except TimeoutError:
            incomplete += 1
        arrivals = [(t - t0) * 1000 for t in crowd.arrivals.get(number, [])]
        latencies.extend(arrivals)
        if arrivals:
            per_event.append((min(arrivals), max(arrivals)))
        await asyncio.sleep(max(0.05, toggle_every_s - (time.monotonic() - t0)))
    return {"latencies": latencies, "per_event": per_event, "incomplete": incomplete}


async def run_spaces(args, workdir: Path) -> dict:
    db_path = workdir / "bench.sqlite3"
    space_id, host_key, listener_keys = await asyncio.to_thread(prepare_database, db_path, args.listeners)
    server_env = {"SQLITE_PATH": str(db_path)}
    if args.redis:
        server_env["REDIS_URL"] = args.redis
    procs, urls = [], []
    for n in range(args.processes):
        port = free_port()
        procs.append(
            start_daphne(port, server_env, "spaces_project.asgi:application", workdir / f"daphne-{n}.log")
        )
        urls.append(f"ws://127.0.0.1:{port}/ws/spaces/{space_id}/")
    url = urls[0]  # the host's process; listeners are spread over all of them
    crowd = Crowd('"type":"muted"', "v")
    try:
        # The host first: a live Space whose host has been away longer than the grace ends itself.
        host, snapshot = await connect_host(url, host_key)
        version = snapshot["v"]
        drain = asyncio.create_task(_drain(host))
        started = time.monotonic()
        connected = await crowd.open(
            urls, [[("Cookie", f"sessionid={k}")] for k in listener_keys], args.listeners, args.concurrency
        )
        connect_s = time.monotonic() - started
        log(f"spaces: {connected} listeners connected in {connect_s:.1f}s")
        await asyncio.sleep(1.5)  # let the coalesced listener count settle

        async def toggle(number: int) -> None:
            action = "unmute_self" if number % 2 else "mute_self"
            await host.send(json.dumps({"type": action}))

        # Host starts muted: unmute, mute, ... each bumps the version by one.
        numbers = list(range(version + 1, version + 1 + args.toggles))
        measured = await measure(crowd, lambda n: toggle(n - version), numbers)
        drain.cancel()
        await host.close()
        await crowd.close()
        return {
            "connected": connected,
            "connect_s": round(connect_s, 1),
            **measured,
        }
    finally:
        for proc in procs:
            stop(proc)


async def connect_host(url: str, host_key: str):
    """The host's socket and the snapshot it was let in with."""
    host = await signed_in_socket(url, host_key)
    snapshot = json.loads(await host.recv())
    if snapshot.get("type") != "snapshot":
        raise RuntimeError(f"the host was not let in: {snapshot}")
    return host, snapshot


async def _drain(ws) -> None:
    try:
        async for _ in ws:
            pass
    except Exception:
        return


async def run_floor(args, workdir: Path) -> dict:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-floor", str(port)],
        cwd=ROOT,
        stdout=(workdir / "floor.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc)
        return await _measure_relay(f"ws://127.0.0.1:{port}/", args)
    finally:
        stop(proc)


async def run_daphne_floor(args, workdir: Path) -> dict:
    port = free_port()
    proc = start_daphne(port, {}, "bench.broadcast_asgi:application", workdir / "daphne_floor.log")
    try:
        return await _measure_relay(f"ws://127.0.0.1:{port}/", args)
    finally:
        stop(proc)


async def run_groups(args, workdir: Path) -> dict:
    port = free_port()
    proc = start_daphne(port, {}, "bench.groups_asgi:application", workdir / "groups.log")
    try:
        return await _measure_relay(f"ws://127.0.0.1:{port}/", args, timeout=120)
    finally:
        stop(proc)


async def _measure_relay(url: str, args, **measure_options) -> dict:
    """The listeners and a host on a server that relays whatever the host sends to everyone (the
    floor, and the per-consumer-groups variant); the host sends the `muted` frames itself."""
    from websockets.asyncio.client import connect

    crowd = Crowd('"type":"muted"', "v")
    connected = await crowd.open(url, None, args.listeners, args.concurrency)
    host = await connect(url, compression=None, ping_interval=None, origin=origin_for(url))
    await asyncio.sleep(0.5)

    async def toggle(number: int) -> None:
        event = {"type": "muted", "v": number, "user_id": 1, "muted": bool(number % 2), "by": 1}
        await host.send(json.dumps(event, separators=(",", ":")))

    measured = await measure(crowd, toggle, list(range(1, args.toggles + 1)), **measure_options)
    await host.close()
    await crowd.close()
    return {"connected": connected, **measured}


def log(message: str) -> None:
    print(f"[ws_fanout {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def figures(prefix: str, result: dict) -> dict:
    lat = result["latencies"]
    return {
        f"{prefix}p50_ms": round(percentile(lat, 50), 1),
        f"{prefix}p99_ms": round(percentile(lat, 99), 1),
        f"{prefix}max_ms": round(max(lat), 1) if lat else None,
        f"{prefix}incomplete": result["incomplete"],
        # Median over events of the first delivery (server work before fan-out: for Spaces, the
        # service's database write) and of last minus first (the fan-out itself).
        f"{prefix}first_p50_ms": round(percentile([f for f, _ in result["per_event"]], 50), 1),
        f"{prefix}spread_p50_ms": round(percentile([last - f for f, last in result["per_event"]], 50), 1),
        f"{prefix}spread_max_ms": round(max((last - f for f, last in result["per_event"]), default=0), 1),
    }


async def main(args) -> dict:
    raise_fd_limit(2 * args.listeners + 512)
    workdir = Path(tempfile.mkdtemp(prefix="ws_fanout-", dir=ROOT / "var"))
    try:
        spaces = await run_spaces(args, workdir)
        log(f"spaces: {figures('', spaces)}")
        floor = await run_floor(args, workdir)
        log(f"floor: {figures('', floor)}")
        out = {
            "processes": args.processes,
            "layer": "redis" if args.redis else "in-memory",
            "listeners": args.listeners,
            "toggles": args.toggles,
            "connected": spaces["connected"],
            "connect_s": spaces["connect_s"],
            **figures("", spaces),
            "floor_connected": floor["connected"],
            **figures("floor_", floor),
        }
        out["ratio_p99"] = round(out["p99_ms"] / out["floor_p99_ms"], 2) if out["floor_p99_ms"] else None
        bare = await run_daphne_floor(args, workdir)
        log(f"daphne floor: {figures('', bare)}")
        out.update({"daphne_floor_connected": bare["connected"], **figures("daphne_floor_", bare)})
        out["daphne_floor_ratio_p99"] = (
            round(out["daphne_floor_p99_ms"] / out["floor_p99_ms"], 2) if out["floor_p99_ms"] else None
        )
        if args.groups:
            groups = await run_groups(args, workdir)
            out.update({"groups_connected": groups["connected"], **figures("groups_", groups)})
            out["groups_ratio_p99"] = (
                round(out["groups_p99_ms"] / out["floor_p99_ms"], 2) if out["floor_p99_ms"] else None
            )
        out["cpus"] = os.cpu_count()
        return out
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--toggles", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16, help="sockets opening at once")
    parser.add_argument("--groups", action="store_true", help="also measure per-consumer Channels groups")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, database)")
    parser.add_argument(
        "--processes", type=int, default=1, help="daphne processes (more than one needs --redis)"
    )
    parser.add_argument("--redis", help="REDIS_URL for the channel layer, e.g. redis://127.0.0.1:6379/15")
    parser.add_argument("--serve-floor", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.processes > 1 and not args.redis:
        parser.error("several daphne processes share events through Redis: add --redis URL")
    # A plain `kill` still runs the finally blocks that stop the servers this started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.serve_floor:
        asyncio.run(serve_floor(args.serve_floor))
    else:
        print(json.dumps(asyncio.run(main(args))))
