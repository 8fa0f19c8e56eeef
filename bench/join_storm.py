"""A join storm: N signed-in listeners open a live Space's socket at once. How long from the first
open until the last listener has its snapshot, against the least a Python websocket server can do.

    .venv/bin/python bench/join_storm.py --listeners 5000 [--concurrency 16] [--redis URL]
        [--postgres postgres://postgres@127.0.0.1:5432/<a throwaway name>] [--processes N]
    .venv/bin/python bench/join_storm.py --scaled --listeners 10000

Runs, with the same client code:

1. the real stack: one daphne subprocess (`--processes` of them, listeners spread evenly;
   `--scaled` is two on PostgreSQL and Redis, as `make run-scaled`) serving spaces_project.asgi
   against a fresh SQLite file (with --postgres, a PostgreSQL database of that name, dropped and
   created afresh; with --redis, the Redis channel layer), a host on stage in a live Space, then N
   distinct signed-in listeners opening `/ws/spaces/<id>/`, `--concurrency` handshakes at a time; a join is
   done when that socket has received its snapshot;
2. the framework's floor: the same signed-in listeners against `bench/hello_asgi.py` on as many
   daphne processes (Channels' session and auth middleware, one user lookup, one message);
3. the floor: a bare asyncio `websockets` server that sends one message on connect, the same N
   clients opening the same way.

`connect_s` is from the first open to the last snapshot (`channels_floor_connect_s` the same for
the framework's floor, and `channels_floor_ratio` it against the bare floor); `errors` counts
sockets refused or closed before their snapshot; `host_sees` is the listener count the host's
socket reports 2 s after the last join (it should be N). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, origin_for, percentile, wait_for_port  # noqa: E402
from bench.soak import fresh_database  # noqa: E402
from bench.ws_fanout import connect_host, prepare_database, raise_fd_limit, start_daphne, stop  # noqa: E402


async def serve_floor(port: int) -> None:
    from websockets.asyncio.server import serve

    async def handler(ws):
        await ws.send('{"type":"snapshot"}')
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None):
        await asyncio.Future()


async def storm(urls: list[str], cookies: list[str | None], concurrency: int) -> dict:
    """Open one socket per cookie, `concurrency` at a time; each counts once its first frame (the
    snapshot) arrives. Returns timings and the open sockets (left open, as listeners stay)."""
    from websockets.asyncio.client import connect

    sem = asyncio.Semaphore(concurrency)
    sockets, joins, errors = [], [], []
    started = time.monotonic()

    async def one(i: int, cookie: str | None) -> None:
        async with sem:
            t0 = time.monotonic()
            try:
                ws = await connect(
                    urls[i % len(urls)],
                    additional_headers=[("Cookie", f"sessionid={cookie}")] if cookie else None,
                    origin=origin_for(urls[i % len(urls)]),
                    compression=None,
                    max_size=2**22,
                    ping_interval=None,
                    open_timeout=600,
                    max_queue=None,
                )
                first = json.loads(await asyncio.wait_for(ws.recv(), 600))
            except Exception as exc:  # refused, closed or timed out: an error for the figure
                errors.append(type(exc).__name__)
                return
            if first.get("type") != "snapshot":
                errors.append(f"first frame {first.get('type')}")
            sockets.append(ws)
            joins.append(time.monotonic() - t0)
        # Keep reading so the server's writes never block on this socket.
        asyncio.ensure_future(_drain(ws))

    await asyncio.gather(*(one(i, c) for i, c in enumerate(cookies)))
    return {
        "connect_s": time.monotonic() - started,
        "join_p50_ms": percentile([j * 1000 for j in joins], 50),
        "join_p95_ms": percentile([j * 1000 for j in joins], 95),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "sockets": sockets,
    }


async def _drain(ws) -> None:
    try:
        async for _ in ws:
            pass
    except Exception:
        return


def start_servers(
    count: int, env: dict[str, str], app: str, log_stem: Path, path: str
) -> tuple[list, list[str]]:
    """`count` daphne processes serving `app`; their processes and the websocket URL of `path` on each."""
    procs, urls = [], []
    for n in range(count):
        port = free_port()
        procs.append(start_daphne(port, env, app, log_stem.with_name(f"{log_stem.name}{n}.log")))
        urls.append(f"ws://127.0.0.1:{port}{path}")
    return procs, urls


async def run_spaces(args, workdir: Path) -> dict:
    db_path = workdir / "bench.sqlite3"
    if args.postgres:
        fresh_database(args.postgres)
        os.environ["DATABASE_URL"] = args.postgres  # the migration, the seeding and daphne use it
    space_id, host_key, keys = await asyncio.to_thread(prepare_database, db_path, args.listeners)
    env = {"SQLITE_PATH": str(db_path)}
    if args.redis:
        env["REDIS_URL"] = args.redis
        # The seeded session keys repeat from run to run: a fresh cache prefix keeps an earlier
        # run's cached sessions (another user, another password hash) from turning every socket
        # into a guest's.
        run = f"join-storm-{os.getpid()}-{int(time.time())}"
        env["CACHE_PREFIX"] = env["CHANNEL_PREFIX"] = run
    procs, urls = start_servers(
        args.processes, env, "spaces_project.asgi:application", workdir / "daphne", f"/ws/spaces/{space_id}/"
    )
    try:
        host, _ = await connect_host(urls[0], host_key)
        counts: list[int] = []

        async def watch() -> None:
            async for message in host:
                if '"listener_count"' in message:
                    counts.append(json.loads(message)["count"])

        watcher = asyncio.create_task(watch())
        result = await storm(urls, keys, args.concurrency)  # listener i goes to process i mod N
        await asyncio.sleep(2.0)
        watcher.cancel()
        await asyncio.gather(*(ws.close() for ws in result.pop("sockets")), return_exceptions=True)
        await host.close()
        return {**result, "host_sees": counts[-1] if counts else None, "env": env, "keys": keys}
    finally:
        for proc in procs:
            stop(proc)


async def run_channels_floor(args, workdir: Path, env: dict[str, str], keys: list[str]) -> dict:
    """The same listeners, signed in with the same sessions, against `bench/hello_asgi.py` on as
    many daphne processes: what Django and Channels alone cost per signed-in socket."""
    if "CACHE_PREFIX" in env:  # sessions cached by the first run would flatter this one
        env = {**env, "CACHE_PREFIX": env["CACHE_PREFIX"] + "-hello"}
    procs, urls = start_servers(args.processes, env, "bench.hello_asgi:application", workdir / "hello", "/")
    try:
        result = await storm(urls, keys, args.concurrency)
        await asyncio.gather(*(ws.close() for ws in result.pop("sockets")), return_exceptions=True)
        return result
    finally:
        for proc in procs:
            stop(proc)


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
        result = await storm([f"ws://127.0.0.1:{port}/"], [None] * args.listeners, args.concurrency)
        await asyncio.gather(*(ws.close() for ws in result.pop("sockets")), return_exceptions=True)
        return result
    finally:
        stop(proc)


async def main(args) -> dict:
    raise_fd_limit(2 * args.listeners + 512)
    workdir = Path(tempfile.mkdtemp(prefix="join_storm-", dir=ROOT / "var"))
    try:
        spaces = await run_spaces(args, workdir)
        framework = await run_channels_floor(args, workdir, spaces.pop("env"), spaces.pop("keys"))
        floor = await run_floor(args, workdir)
        return {
            "bench": "join_storm",
            "layer": "redis" if args.redis else "in-memory",
            "database": "postgresql" if args.postgres else "sqlite",
            "processes": args.processes,
            "listeners": args.listeners,
            "concurrency": args.concurrency,
            "connect_s": round(spaces["connect_s"], 2),
            "floor_connect_s": round(floor["connect_s"], 2),
            "ratio": round(spaces["connect_s"] / floor["connect_s"], 2) if floor["connect_s"] else None,
            "joins_per_s": round(args.listeners / spaces["connect_s"], 1),
            "join_p50_ms": round(spaces["join_p50_ms"], 1),
            "join_p95_ms": round(spaces["join_p95_ms"], 1),
            "errors": spaces["errors"],
            "error_kinds": spaces["error_kinds"],
            "floor_errors": floor["errors"],
            "channels_floor_connect_s": round(framework["connect_s"], 2),
            "channels_floor_ratio": round(framework["connect_s"] / floor["connect_s"], 2)
            if floor["connect_s"]
            else None,
            "channels_floor_errors": framework["errors"],
            "host_sees": spaces["host_sees"],
            "cpus": os.cpu_count(),
            "load_before": round(os.getloadavg()[0], 1),
        }
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16, help="handshakes in flight at once")
    parser.add_argument("--redis", help="REDIS_URL for the channel layer, e.g. redis://127.0.0.1:6379/15")
    parser.add_argument("--postgres", help="a PostgreSQL URL whose database is dropped and made afresh")
    parser.add_argument(
        "--processes", type=int, default=1, help="daphne processes (more than one needs --redis)"
    )
    parser.add_argument(
        "--scaled",
        action="store_true",
        help="make run-scaled's shape: two daphne processes on PostgreSQL and Redis (nginx, which only "
        "passes the sockets on, left out)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, database)")
    parser.add_argument("--serve-floor", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scaled:
        args.processes = max(args.processes, 2)
        args.postgres = args.postgres or "postgres://postgres@127.0.0.1:5432/bench_js_scaled"
        args.redis = args.redis or "redis://127.0.0.1:6379/13"
    if args.processes > 1 and not args.redis:
        parser.error("more than one process needs --redis: the in-memory layer is one process's own")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.serve_floor:
        asyncio.run(serve_floor(args.serve_floor))
    else:
        print(json.dumps(asyncio.run(main(args))))
