"""A host with 100,000 followers goes live: how long until every follower's notice exists, and until
the 1,000 of them with a page open have it on their socket?

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<any> REDIS_URL=redis://127.0.0.1:6379/<n> \\
        .venv/bin/python bench/golive.py [--followers 100000] [--connected 1000]

PostgreSQL + Redis only. The run uses a throwaway database on DATABASE_URL's server (created,
migrated, dropped at the end; nothing to delete row by row) and flushes REDIS_URL's database, so
give it one of its own. One daphne serves the 1,000 bell sockets (/ws/notifications/), one real
`celery worker` (prefork, --concurrency) runs the fan-out. The host goes live through
`rooms.services.space_create`, as the "Start" button does. Prints one JSON line; targets: all
notice rows ≤ 30 s, connected followers ≤ 5 s, 0 duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, signed_in_session_data, signed_in_socket, wait_for_port  # noqa: E402


def throwaway_database(url: str) -> tuple[str, str]:
    """Create an empty database next to DATABASE_URL's; returns (its URL, the admin URL)."""
    import psycopg

    parts = urlsplit(url)
    name = f"bench_golive_{os.getpid()}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}")), admin


def drop_database(admin: str, url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=100_000)
    parser.add_argument("--connected", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=2, help="prefork children of the worker")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url.startswith(("postgres://", "postgresql://")) or not os.environ.get("REDIS_URL"):
        sys.exit("bench/golive.py needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    db_url, admin = throwaway_database(base_url)
    tmp = Path(tempfile.mkdtemp(prefix="bench-golive-"))
    procs: list[subprocess.Popen] = []
    try:
        result = run(args, db_url, tmp, procs)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        from django.db import connections

        connections.close_all()
        drop_database(admin, db_url)
    print(json.dumps(result))


def run(args, db_url: str, tmp: Path, procs: list) -> dict:
    os.environ.update(
        {
            "DATABASE_URL": db_url,
            "DEBUG": "1",
            "SPACES_VAR_DIR": str(tmp),
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "spaces_project.settings",
        }
    )
    import django

    django.setup()
    import redis
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Follow, User
    from notifications.models import Delivery, Notification
    from rooms import golive, services

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    call_command("migrate", verbosity=0)

    setup_started = time.monotonic()
    host = User.objects.create(username="golive_host", display_name="Ana", hosting_granted=True)
    User.objects.bulk_create(
        [User(username=f"f{i}", email=f"f{i}@bench.invalid") for i in range(args.followers)], batch_size=5000
    )
    ids = list(User.objects.exclude(pk=host.pk).order_by("pk").values_list("pk", flat=True))
    Follow.objects.bulk_create([Follow(follower_id=pk, followee=host) for pk in ids], batch_size=5000)
    User.objects.filter(pk=host.pk).update(follower_count=len(ids))
    host.refresh_from_db()
    # The connected ones are spread over the whole follower list, not the first thousand.
    step = max(1, len(ids) // args.connected)
    connected_ids = ids[::step][: args.connected]
    store = SessionStore()
    expire = timezone.now() + timezone.timedelta(days=1)
    keys = {}
    sessions = []
    for user in User.objects.filter(pk__in=connected_ids):
        key = f"golive{user.pk:026d}"
        keys[user.pk] = key
        sessions.append(
            Session(
                session_key=key, session_data=store.encode(signed_in_session_data(user)), expire_date=expire
            )
        )
    Session.objects.bulk_create(sessions, batch_size=1000)
    setup_seconds = time.monotonic() - setup_started

    logs = tmp / "logs"
    logs.mkdir()
    env = {**os.environ}
    port = free_port()
    daphne = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "spaces_project.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=(logs / "daphne.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    procs.append(daphne)
    wait_for_port(port, daphne)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "spaces_project",
            "worker",
            f"--concurrency={args.concurrency}",
            "--loglevel=INFO",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=(logs / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    procs.append(worker)
    deadline = time.monotonic() + 120
    while b"ready." not in (logs / "worker.log").read_bytes() and time.monotonic() < deadline:
        time.sleep(0.2)

    return asyncio.run(
        measure(args, port, keys, host, services, golive, Notification, Delivery, connection, setup_seconds)
    )


async def measure(
    args, port, keys, host, services, golive, Notification, Delivery, connection, setup_seconds
) -> dict:
    from asgiref.sync import sync_to_async

    url = f"ws://127.0.0.1:{port}/ws/notifications/"
    sem = asyncio.Semaphore(32)
    sockets = []

    async def open_one(key):
        async with sem:
            ws = await signed_in_socket(url, key)
            await ws.recv()  # the unread count: connected and marked online
            sockets.append(ws)

    await asyncio.gather(*(open_one(k) for k in keys.values()))
    arrivals: list[float] = []
    got: Counter = Counter()

    async def read(ws, i):
        async for message in ws:
            if '"notification"' in message and "is live" in message:
                arrivals.append(time.monotonic())
                got[i] += 1

    readers = [asyncio.create_task(read(ws, i)) for i, ws in enumerate(sockets)]

    started = time.monotonic()
    space = await sync_to_async(services.space_create)(host=host, title="Go-live benchmark")

    def count_rows() -> int:
        return Notification.objects.filter(kind=golive.FOLLOWED_LIVE).count()

    rows_seconds = None
    deadline = started + args.timeout
    while time.monotonic() < deadline:
        if rows_seconds is None and await sync_to_async(count_rows)() >= args.followers:
            rows_seconds = time.monotonic() - started
        if rows_seconds is not None and len(got) >= len(sockets):
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(2)  # a duplicate would arrive now
    for task in readers:
        task.cancel()
    for ws in sockets:
        await ws.close()

    def tallies():
        notes = Notification.objects.filter(kind=golive.FOLLOWED_LIVE)
        return (
            notes.count(),
            notes.values("user_id").distinct().count(),
            dict(Counter(Delivery.objects.filter(space_id=space.pk).values_list("status", flat=True))),
        )

    rows, people, statuses = await sync_to_async(tallies)()
    return {
        "bench": "golive",
        "followers": args.followers,
        "connected": len(sockets),
        "database": connection.vendor,
        "concurrency": args.concurrency,
        "chunk": golive.rules.GOLIVE_CHUNK,
        "cpus": os.cpu_count(),
        "setup_seconds": round(setup_seconds, 1),
        "all_rows_seconds": round(rows_seconds, 2) if rows_seconds is not None else None,
        "connected_all_seconds": round(max(arrivals) - started, 2) if len(got) >= len(sockets) else None,
        "connected_p50_seconds": round(sorted(arrivals)[len(arrivals) // 2] - started, 2)
        if arrivals
        else None,
        "connected_received": len(got),
        "notice_rows": rows,
        "duplicate_rows": rows - people,
        "duplicate_frames": sum(n - 1 for n in got.values()),
        "statuses": statuses,
        "load_average_at_start": round(os.getloadavg()[0], 1),
        "targets": {"all_rows_seconds": 30, "connected_all_seconds": 5, "duplicates": 0},
    }


if __name__ == "__main__":
    main()
