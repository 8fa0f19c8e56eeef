"""HTTP throughput of the pages people load most, against the floor of a minimal view.

    .venv/bin/python bench/http_pages.py [--seconds 10] [--rounds 3] [--connections 32] [--compare-stock]

Builds a fresh PostgreSQL database (DATABASE_URL's server, database `spaces_bench_http`) with
a viewer who follows 1,000 accounts, 50 live Spaces among them, and one Space with 500 present
listeners. Serves it with one daphne process (production settings: DEBUG off) and drives it with
wrk at fixed concurrency:

* floor: `/healthz`, a Django view that touches nothing (same server, same run);
* home: `/` as the signed-in viewer (live bar, discovery, upcoming);
* space: `/spaces/<id>/` of the 500-listener Space, as a listener.

This machine is noisy (a shared VM: the floor alone moves by a quarter between runs), so the three
are measured in rounds — floor, home, Space page, then again — and each page's ratio is taken
against the floor of its own round; the figure reported is the median round's. Each URL also
gets the server's CPU per request (`cpu_ms`, from /proc, all its threads), which moves less than
req/s when the machine is busy with something else.

With --compare-stock, a second daphne serves the same three URLs through Django's own ASGI
handler (bench/stock_asgi.py) instead of spaces_project/handler.py, measured in the same rounds.
With --compare-commit REV, a third serves them from a checkout of an earlier commit (a temporary
git worktree, same database and collected static files, so REV must have the same migrations and
static files), to see what a change did on a machine whose speed drifts between runs.

Queries per page are counted in-process with the test client, once with a small world and once
with the full one: the two must be equal. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import checkout_commit, free_port, process_cpu_seconds, remove_checkout, wait_for_port  # noqa: E402

DB_NAME = "spaces_bench_http"


def prepare_environment(base_url: str, static_root: str, db_name: str = DB_NAME) -> dict[str, str]:
    import psycopg

    admin = base_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    env = {
        "DATABASE_URL": base_url.rsplit("/", 1)[0] + "/" + db_name,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0",
        "SECURE_HSTS_SECONDS": "0",
        "STATIC_ROOT": static_root,
        # The bench runs longer than presence rows stay fresh without a live socket refreshing them.
        "SPACES_PRESENCE_STALE_SECONDS": "3600",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    # Queries are counted in this process with the shared home sections uncached (the worst case);
    # the server runs with the default cache, as in production.
    os.environ["SPACES_HOME_CACHE_SECONDS"] = "0"
    env["SPACES_HOME_CACHE_SECONDS"] = os.environ.get("BENCH_HOME_CACHE_SECONDS", "3")
    os.environ.pop("REDIS_URL", None)
    return env


def build_world(*, follows: int, live: int, listeners: int, prefix: str):
    """Create the data; returns (viewer, big_space, listener_user)."""
    from django.utils import timezone

    from accounts.models import Follow, User
    from rooms.models import Connection, Participant, Space

    now = timezone.now()
    users = User.objects.bulk_create(
        [User(username=f"{prefix}u{i}", display_name=f"Person {i}", password="!") for i in range(follows)]
    )
    viewer = User.objects.create(username=f"{prefix}viewer", password="!")
    Follow.objects.bulk_create([Follow(follower=viewer, followee=u) for u in users])
    User.objects.filter(pk=viewer.pk).update(following_count=follows)
    spaces = Space.objects.bulk_create(
        [
            Space(host=users[i], title=f"Live Space {i}", topics=["bench"], state="live", started_at=now)
            for i in range(live)
        ]
    )
    hosts = Participant.objects.bulk_create(
        [Participant(space=s, user=s.host, role="host", stage_since=now) for s in spaces]
    )
    Connection.objects.bulk_create(
        [
            Connection(
                channel_name=f"{prefix}host{p.pk}",
                space=p.space,
                participant=p,
                user=p.user,
                process="b",
                seen_at=now,
            )
            for p in hosts
        ]
    )
    big = spaces[0]
    crowd = User.objects.bulk_create(
        [User(username=f"{prefix}l{i}", display_name=f"Listener {i}", password="!") for i in range(listeners)]
    )
    parts = Participant.objects.bulk_create([Participant(space=big, user=u, role="listener") for u in crowd])
    Connection.objects.bulk_create(
        [
            Connection(
                channel_name=f"{prefix}c{p.pk}",
                space=big,
                participant=p,
                user=p.user,
                process="b",
                seen_at=now,
            )
            for p in parts
        ]
    )
    return viewer, big, crowd[0] if crowd else viewer


def signed_in_cookie(user) -> str:
    """The Cookie header `user`'s browser sends: its session, and the CSRF cookie its first page set."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    assert client.get("/").status_code == 200
    return "; ".join(f"{name}={client.cookies[name].value}" for name in ("sessionid", "csrftoken"))


def count_queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(ctx.captured_queries)


def run_wrk(url: str, cookie: str | None, seconds: int, connections: int, server_pid: int) -> dict:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s", url]
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: {cookie}"]
    cpu_before = process_cpu_seconds(server_pid)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    cpu = process_cpu_seconds(server_pid) - cpu_before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))

    def pct(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": round(rps, 1),
        # The server's CPU per request: steadier than req/s on a shared machine, and it shows
        # where a page's cost is, whatever else the machine is doing meanwhile.
        "cpu_ms": round(1000 * cpu / max(requests, 1), 3),
        "p50_ms": round(pct("50"), 2),
        "p99_ms": round(pct("99"), 2),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


def _summary(runs: list[dict]) -> dict:
    """A URL's figures over the rounds: every round's req/s, the median CPU per request, the median
    round's latencies."""
    middle = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    return {
        "rps": [r["rps"] for r in runs],
        "cpu_ms": statistics.median(r["cpu_ms"] for r in runs),
        "p50_ms": middle["p50_ms"],
        "p99_ms": middle["p99_ms"],
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "socket_errors": sum(r["socket_errors"] for r in runs),
    }


def _ratio(one_round: dict, name: str, floor: str = "floor") -> float:
    return round(one_round[name]["rps"] / one_round[floor]["rps"], 3)


def _median_ratio(rounds: list[dict], name: str, floor: str = "floor") -> float:
    return statistics.median(_ratio(r, name, floor) for r in rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--compare-stock", action="store_true", help="also serve the pages through Django's own ASGI handler"
    )
    parser.add_argument(
        "--compare-commit", metavar="REV", help="also serve the pages from this commit's code (git worktree)"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")

    static_root = tempfile.mkdtemp(prefix="spaces-static-")
    env = prepare_environment(args.database_url, static_root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spaces_project.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)

    # Query counts with a small world, then the full one: they must not grow with the data.
    small_viewer, small_space, small_listener = build_world(follows=10, live=3, listeners=5, prefix="s")
    viewer, big, listener = build_world(follows=1000, live=50, listeners=500, prefix="b")
    counts = {}
    for label, (v, s, lst) in {
        "small": (small_viewer, small_space, small_listener),
        "full": (viewer, big, listener),
    }.items():
        home_client, space_client = Client(), Client()
        home_client.force_login(v)
        space_client.force_login(lst)
        counts[label] = {
            "home": count_queries(home_client, "/"),
            "space": count_queries(space_client, f"/spaces/{s.pk}/"),
        }
    home_cookie, space_cookie = signed_in_cookie(viewer), signed_in_cookie(listener)
    from django.db import connections

    connections.close_all()

    def serve(app: str, log_name: str, code: Path = ROOT) -> tuple[int, subprocess.Popen]:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app],
            cwd=code,
            env={**os.environ, **env},  # env last: the server's own cache setting wins
            stdout=subprocess.DEVNULL,
            stderr=open(ROOT / "var" / log_name, "wb"),  # noqa: SIM115 - lives as long as the server
        )
        return port, process

    servers = {"": serve("spaces_project.asgi:application", "bench-http-daphne.log")}
    if args.compare_stock:
        servers["stock_"] = serve("bench.stock_asgi:application", "bench-http-daphne-stock.log")
    worktree = checkout_commit(args.compare_commit) if args.compare_commit else None
    if worktree is not None:
        servers["ref_"] = serve("spaces_project.asgi:application", "bench-http-daphne-ref.log", worktree)
    try:
        targets = {}
        for prefix, (port, process) in servers.items():
            wait_for_port(port, process)
            base = f"http://127.0.0.1:{port}"
            targets.update(
                {
                    prefix + "floor": (base + "/healthz", None, process.pid),
                    prefix + "home": (base + "/", home_cookie, process.pid),
                    prefix + "space": (f"{base}/spaces/{big.pk}/", space_cookie, process.pid),
                }
            )
        for url, cookie, pid in targets.values():
            run_wrk(url, cookie, 2, args.connections, pid)  # warm-up
        rounds = [
            {
                name: run_wrk(url, cookie, args.seconds, args.connections, pid)
                for name, (url, cookie, pid) in targets.items()
            }
            for _ in range(args.rounds)
        ]
    finally:
        for _, process in servers.values():
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()  # daphne waits for open connections; wrk has already gone
                process.wait(timeout=10)
        shutil.rmtree(static_root, ignore_errors=True)
        if worktree is not None:
            remove_checkout(worktree)

    figures = {}
    for prefix in servers:
        floor = prefix + "floor"
        figures.update(
            {name: _summary([r[name] for r in rounds]) for name in (floor, prefix + "home", prefix + "space")}
        )
        for page in (prefix + "home", prefix + "space"):
            figures[f"{page}_ratio"] = _median_ratio(rounds, page, floor)
            figures[f"{page}_ratios"] = [_ratio(r, page, floor) for r in rounds]
    if args.compare_commit:
        figures["ref_commit"] = args.compare_commit
        # How much faster each URL is served by this code than by the earlier commit's, round by round.
        figures["speedup_over_ref"] = {
            name: round(statistics.median(r[name]["rps"] / r["ref_" + name]["rps"] for r in rounds), 2)
            for name in ("floor", "home", "space")
        }
    if args.compare_stock:
        # How much faster each URL is served by our handler than by Django's, round by round.
        figures["speedup_over_stock"] = {
            name: round(statistics.median(r[name]["rps"] / r["stock_" + name]["rps"] for r in rounds), 2)
            for name in ("floor", "home", "space")
        }
    print(
        json.dumps(
            {
                "bench": "http_pages",
                "server": "daphne x1, PostgreSQL, DEBUG off",
                "connections": args.connections,
                "seconds": args.seconds,
                "rounds": args.rounds,
                **figures,
                "queries": counts,
                "queries_constant": counts["small"] == counts["full"],
            }
        )
    )


if __name__ == "__main__":
    main()
