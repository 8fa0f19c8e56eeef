"""A soak: one daphne on PostgreSQL + Redis carries a busy Space for a long time. Does its memory
settle, does the host's listener count stay exact, and is nothing left behind?

    .venv/bin/python bench/soak.py --minutes 30 [--listeners 500] [--plot docs/soak-rss.png]

What runs, for `--minutes`:

- one daphne serving spaces_project.asgi against a fresh PostgreSQL database (`--database`) and
  the Redis channel layer and cache (`--redis`);
- a live Space with its host and `--speakers` speakers on stage, each toggling their microphone
  every two seconds or so;
- `--listeners` signed-in listeners, each leaving and joining again about every `--reconnect-s`
  seconds (uniformly between half and one and a half times that), some with a goodbye frame and
  some by just dropping the socket;
- `--reactions` reactions a second, each from a listener picked at random among those connected
  who have not used up the per-person limit (SPACES_REACTIONS_PER_WINDOW, 5 in any 5 s), as a
  page shows its person when they may react again.

Every 5 s the server's RSS is read from /proc. At the end the churn stops with every listener
connected, and `host_sees` is the listener count on the host's socket 3 s later (it should be
`--listeners`); then everyone closes, and `presence_rows_left` counts the connection rows still in
the database up to 60 s after the last socket closed (it should be 0; `presence_clear_s` says when
the last one went).

PostgreSQL must vacuum as production's does: when the server's autovacuum is off (this machine's
is configured for test runs), the soak runs `VACUUM (ANALYZE)` every 60 s itself.

`rss_growth_pct` compares the highest RSS after the warm-up (`--warmup-minutes`) with the RSS at
the end of the warm-up. `join_p50_ms`/`join_p95_ms`/`join_max_ms`: how long joins after the
warm-up waited for their snapshot (a person's "Connecting…"). `errors` counts error frames,
refused or failed joins and sockets closed by the server. Prints one JSON line; writes the RSS
curve as a PNG with `--plot`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    free_port,
    percentile,
    process_cpu_seconds,
    signed_in_session_data,
    signed_in_socket,
)
from bench.ws_fanout import raise_fd_limit, start_daphne, stop  # noqa: E402

EMOJI = "💯"
# daphne runs as in production: DEBUG off (no query log or debug cursor), a real secret key (the
# seeded sessions are signed with it), hosts named; the proxy's TLS is not part of this test.
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "soak-" + "k" * 60,
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "0",
}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def fresh_database(url: str) -> None:
    """Drop and create the database named in `url` (PostgreSQL)."""
    import psycopg
    from psycopg import sql

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def server_autovacuum(url: str) -> bool:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SHOW autovacuum").fetchone()[0] == "on"


def vacuum(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


async def vacuum_every(url: str, seconds: float) -> None:
    """Autovacuum's job, for a server that has it off (this machine's PostgreSQL is set up for
    test runs, `autovacuum = off`; production's is on). Presence churn deletes a connection row per
    leave, and unvacuumed dead rows made every presence check slower until the soak collapsed."""
    while True:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(vacuum, url)


def prepare(env: dict[str, str], listeners: int, speakers: int) -> tuple[int, str, list[str], list[str]]:
    """Migrate, then seed a host, speakers on stage, listeners with sessions and one live Space."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
    )
    os.environ.update({**env, "DJANGO_SETTINGS_MODULE": "spaces_project.settings"})
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from accounts.models import User
    from rooms import services
    from rooms.models import Participant

    password = make_password("bench-password-1")
    host = User.objects.create(username="soak_host", password=password, hosting_granted=True)
    User.objects.bulk_create(
        [User(username=f"soak_s{i}", password=password) for i in range(speakers)]
        + [User(username=f"soak_l{i}", password=password) for i in range(listeners)],
        batch_size=1000,
    )
    stage = list(User.objects.filter(username__startswith="soak_s").order_by("pk"))
    audience = list(User.objects.filter(username__startswith="soak_l").order_by("pk"))
    space = services.space_create(host=host, title="Soak")
    now = timezone.now()
    Participant.objects.bulk_create(
        [
            Participant(
                space=space, user=u, role=Participant.Role.SPEAKER, stage_since=now, was_on_stage=True
            )
            for u in stage
        ]
    )
    expire = now + timezone.timedelta(days=1)
    store = SessionStore()
    keys = {}
    rows = []
    for user in [host, *stage, *audience]:
        key = f"soak{user.pk:028d}"
        keys[user.pk] = key
        data = signed_in_session_data(user)
        rows.append(Session(session_key=key, session_data=store.encode(data), expire_date=expire))
    Session.objects.bulk_create(rows, batch_size=1000)
    return space.pk, keys[host.pk], [keys[u.pk] for u in stage], [keys[u.pk] for u in audience]


def presence_rows(space_id: int) -> int:
    from django.db import close_old_connections

    from rooms.models import Connection

    close_old_connections()
    return Connection.objects.filter(space_id=space_id).count()


class Soak:
    def __init__(self, url: str, args) -> None:
        self.url = url
        self.args = args
        self.errors: Counter[str] = Counter()
        self.started = time.monotonic()
        self.failed_joins_by_minute: Counter[int] = Counter()
        self.waits: list[tuple[float, float]] = []  # (when, seconds to the snapshot) of each join
        self.reactions = 0
        self.reacted: dict[int, deque[float]] = {}  # listener index -> times of their recent reactions
        from django.conf import settings  # set up by `prepare`, as the server's

        self.reactions_per_window = settings.SPACES_REACTIONS_PER_WINDOW
        self.reaction_window_s = settings.SPACES_REACTIONS_WINDOW_SECONDS + 0.5  # a margin
        self.toggles = 0
        self.open: dict[int, object] = {}  # listener index -> its socket while connected
        self.churning = True
        self.counts: list[int] = []

    async def watch(self, ws, who: str) -> None:
        """Read a socket until it closes: count error frames (and the host's listener counts)."""
        try:
            async for message in ws:
                if '"type":"error"' in message:
                    self.errors[f"{who}:{json.loads(message).get('code')}"] += 1
                elif who == "host" and '"listener_count"' in message:
                    self.counts.append(json.loads(message)["count"])
        except Exception as exc:  # the server dropped us
            self.errors[f"{who}:{type(exc).__name__}"] += 1

    async def join(self, key: str, who: str):
        """Open a socket and wait for its snapshot; None when refused."""
        ws = None
        began = time.monotonic()
        try:
            ws = await signed_in_socket(self.url, key)
            first = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
        except Exception as exc:
            self.errors[f"{who}:join:{type(exc).__name__}"] += 1
            self.failed_joins_by_minute[int((time.monotonic() - self.started) // 60)] += 1
            if ws is not None:  # gave up waiting, as a person reloading the page would: hang up
                await ws.close()
            if os.environ.get("SOAK_DEBUG"):
                print(who, repr(exc)[:300], file=sys.stderr)
            return None
        if first.get("type") != "snapshot":
            self.errors[f"{who}:join:{first.get('code') or first.get('type')}"] += 1
            await ws.close()
            return None
        if who == "host":
            self.counts.append(first["listener_count"])
        self.waits.append((began - self.started, time.monotonic() - began))
        return ws

    async def listener(self, i: int, key: str) -> None:
        period = self.args.reconnect_s
        await asyncio.sleep(random.uniform(0, period))  # spread the first joins out
        attempt = 0
        while True:
            ws = await self.join(key, "listener")
            if ws is None:
                # Back off as the page does (static/js/socket.js): 0.5 s doubling to 10 s, jittered.
                attempt += 1
                base = min(10.0, 0.5 * 2 ** min(attempt - 1, 5))
                await asyncio.sleep(random.uniform(base / 2, base))
                continue
            attempt = 0
            self.open[i] = ws
            reader = asyncio.create_task(self.watch(ws, "listener"))
            stay = random.uniform(0.5 * period, 1.5 * period)
            deadline = time.monotonic() + stay
            while self.churning and time.monotonic() < deadline:
                await asyncio.sleep(min(1.0, deadline - time.monotonic()))
            if not self.churning:
                return  # stay connected for the final count; `close_all` ends it
            del self.open[i]
            if random.random() < 0.5:
                await ws.send('{"type":"leave"}')  # a goodbye; the server closes the socket
            await ws.close()
            await asyncio.gather(reader, return_exceptions=True)

    async def speaker(self, key: str) -> None:
        ws = await self.join(key, "speaker")
        if ws is None:
            return
        reader = asyncio.create_task(self.watch(ws, "speaker"))
        muted = True
        try:
            while self.churning:
                await asyncio.sleep(random.uniform(1.5, 2.5))
                muted = not muted
                await ws.send(json.dumps({"type": "mute_self" if muted else "unmute_self"}))
                self.toggles += 1
        finally:
            await ws.close()
            await asyncio.gather(reader, return_exceptions=True)

    def may_react(self, i: int, now: float) -> bool:
        times = self.reacted.get(i)
        while times and now - times[0] > self.reaction_window_s:
            times.popleft()
        return not times or len(times) < self.reactions_per_window

    async def reactor(self) -> None:
        interval = 1 / self.args.reactions
        next_at = time.monotonic()
        while self.churning:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            now = time.monotonic()
            allowed = [i for i in self.open if self.may_react(i, now)]
            if allowed:
                i = random.choice(allowed)
                ws = self.open[i]
                self.reacted.setdefault(i, deque()).append(now)
                try:
                    await ws.send(json.dumps({"type": "reaction", "emoji": EMOJI}))
                    self.reactions += 1
                except Exception:
                    pass  # that listener is just leaving


async def soak(
    args, space_id: int, host_key: str, stage_keys: list[str], listener_keys: list[str], env
) -> dict:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="soak-", dir=ROOT / "var"))
    proc = start_daphne(port, env, "spaces_project.asgi:application", workdir / "daphne.log")
    url = f"ws://127.0.0.1:{port}/ws/spaces/{space_id}/"
    run = Soak(url, args)
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    cpu_at_start = process_cpu_seconds(proc.pid), time.process_time()
    vacuums = None
    if not server_autovacuum(args.database):
        vacuums = asyncio.create_task(vacuum_every(args.database, 60))
    try:
        host = await run.join(host_key, "host")
        host_reader = asyncio.create_task(run.watch(host, "host"))
        tasks = [asyncio.create_task(run.speaker(k)) for k in stage_keys]
        tasks += [asyncio.create_task(run.listener(i, k)) for i, k in enumerate(listener_keys)]
        tasks.append(asyncio.create_task(run.reactor()))
        end = started + args.minutes * 60
        while time.monotonic() < end:
            samples.append((time.monotonic() - started, rss_mb(proc.pid)))
            await asyncio.sleep(min(5.0, max(0.0, end - time.monotonic())))
        server_cpu = process_cpu_seconds(proc.pid) - cpu_at_start[0]
        client_cpu = time.process_time() - cpu_at_start[1]
        churn_s = time.monotonic() - started
        run.churning = False
        # Everyone still churning rejoins once and stays: the final count is all of them. Those
        # not back within 120 s are counted as errors, and the figures are still printed.
        _done, late = await asyncio.wait(tasks, timeout=120)
        for task in late:
            task.cancel()
        if late:
            run.errors["final:not_back_in_120s"] += len(late)
            await asyncio.gather(*late, return_exceptions=True)
        samples.append((time.monotonic() - started, rss_mb(proc.pid)))
        await asyncio.sleep(3)
        host_sees = run.counts[-1] if run.counts else None
        connected = len(run.open)
        await asyncio.gather(*(ws.close() for ws in run.open.values()), return_exceptions=True)
        await host.close()
        await asyncio.gather(host_reader, return_exceptions=True)
        closed_at = time.monotonic()
        left = await asyncio.to_thread(presence_rows, space_id)
        while left and time.monotonic() - closed_at < 60:  # each close is a database write
            await asyncio.sleep(0.5)
            left = await asyncio.to_thread(presence_rows, space_id)
        clear_s = round(time.monotonic() - closed_at, 1)
    finally:
        if vacuums is not None:
            vacuums.cancel()
        stop(proc)
    warm = args.warmup_minutes * 60
    after = [mb for t, mb in samples if t >= warm] or [samples[-1][1]]
    at_warm = after[0]
    waits = [1000 * w for t, w in run.waits if t >= warm]
    return {
        "samples": samples,
        "host_sees": host_sees,
        "connected_at_end": connected,
        "presence_rows_left": left,
        "presence_clear_s": clear_s,
        "rss_mb_start": round(samples[0][1], 1),
        "rss_mb_at_warmup": round(at_warm, 1),
        "rss_mb_max_after_warmup": round(max(after), 1),
        "rss_mb_end": round(samples[-1][1], 1),
        "rss_growth_pct": round(100 * (max(after) - at_warm) / at_warm, 1),
        # Share of one core used while the churn ran: daphne runs its Python on one core (the GIL).
        "server_cpu_pct": round(100 * server_cpu / churn_s),
        "client_cpu_pct": round(100 * client_cpu / churn_s),
        "joins": len(run.waits),
        # From opening the socket to the snapshot, for the joins after the warm-up.
        "join_p50_ms": round(percentile(waits, 50)) if waits else None,
        "join_p95_ms": round(percentile(waits, 95)) if waits else None,
        "join_max_ms": round(max(waits)) if waits else None,
        "reactions_sent": run.reactions,
        "mute_toggles": run.toggles,
        "errors": sum(run.errors.values()),
        "error_kinds": dict(run.errors.most_common(8)),
        "failed_joins_by_minute": dict(sorted(run.failed_joins_by_minute.items())),
        "vacuum": "autovacuum" if vacuums is None else "the soak's every 60 s (the server's is off)",
    }


def plot(samples: list[tuple[float, float]], warmup_s: float, path: Path) -> None:
    """The RSS curve as a small PNG (Pillow, which the project already has for avatars)."""
    from PIL import Image, ImageDraw

    w, h, pad = 720, 300, 48
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    t_max = max(t for t, _ in samples) or 1
    lo = 0.0
    hi = max(mb for _, mb in samples) * 1.15

    def xy(t: float, mb: float) -> tuple[float, float]:
        return pad + (w - 2 * pad) * t / t_max, h - pad - (h - 2 * pad) * (mb - lo) / (hi - lo)

    d.rectangle([pad, pad, w - pad, h - pad], outline="#999")
    wx = xy(warmup_s, 0)[0]
    d.line([wx, pad, wx, h - pad], fill="#ccc")
    d.text((wx + 4, pad + 4), "end of warm-up", fill="#666")
    d.line([xy(t, mb) for t, mb in samples], fill="#7856ff", width=2)
    for frac in (0, 0.5, 1):
        mb = lo + (hi - lo) * frac
        d.text((4, xy(0, mb)[1] - 6), f"{mb:.0f} MB", fill="#333")
    for minute in range(0, int(t_max // 60) + 1, 5):
        x = xy(minute * 60, 0)[0]
        d.text((x - 8, h - pad + 6), f"{minute} min", fill="#333")
    d.text((pad, 14), "daphne RSS during the soak", fill="#111")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--warmup-minutes", type=float, default=5)
    parser.add_argument("--listeners", type=int, default=500)
    parser.add_argument("--speakers", type=int, default=3)
    parser.add_argument("--reconnect-s", type=float, default=30)
    parser.add_argument(
        "--reactions", type=float, default=20, help="reactions a second, all listeners together"
    )
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/spaces_soak")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--plot", type=Path, help="write the RSS curve here (PNG)")
    args = parser.parse_args()

    raise_fd_limit(2 * args.listeners + 512)
    (ROOT / "var").mkdir(exist_ok=True)
    fresh_database(args.database)
    import redis

    redis.Redis.from_url(args.redis).flushdb()
    env = {"DATABASE_URL": args.database, "REDIS_URL": args.redis, **PRODUCTION}
    space_id, host_key, stage_keys, listener_keys = prepare(env, args.listeners, args.speakers)
    result = asyncio.run(soak(args, space_id, host_key, stage_keys, listener_keys, env))
    samples = result.pop("samples")
    if args.plot:
        plot(samples, args.warmup_minutes * 60, args.plot)
    print(
        json.dumps(
            {
                "bench": "soak",
                "minutes": args.minutes,
                "listeners": args.listeners,
                "speakers": args.speakers,
                "reconnect_s": args.reconnect_s,
                "reactions_per_s": args.reactions,
                **result,
                "host_expected": args.listeners,
                "count_exact": result["host_sees"] == args.listeners,
                "rss_ok": result["rss_growth_pct"] < 10,
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
