"""Capacity of the pages people load most: requests/s with p99 under a bound, per way of serving.

    .venv/bin/python bench/http_pages.py [--workers 2,3] [--steps 8,16,32,64] [--seconds 4]
                                         [--compare-commit REV]
                                         [--db-name NAME]

Builds a fresh PostgreSQL database (DATABASE_URL's server, `--db-name`) with a viewer who follows
1,000 accounts, 50 live Spaces among them, and one Space with 500 present listeners, and serves it
(production settings: DEBUG off) in each of these shapes:

* `gunicorn_wN`: nginx → gunicorn, N processes × 4 threads (deploy/gunicorn.conf.py), one per
  `--workers` value;
* `daphne`: one daphne process alone (what `make run` uses).

With --compare-commit REV the same shapes also serve an earlier commit's code (a temporary git
worktree with the same collected static files), as `ref_…`, in the same run. It gets a database of
its own (`--db-name` + `_ref`), migrated and filled by that commit's own code and its own
`build_world` and `signed_in_cookie`, so REV may have other migrations.

Each URL — `floor` (`/healthz`, a view that touches nothing), `home` (`/` signed in) and `space`
(the 500-listener Space page, as a listener) — is driven by wrk at rising connection counts
(`--steps`). A shape's **capacity** for a URL is the highest requests/s among the steps whose p99
stays under `--p99-ms` (250). The shapes are measured interleaved, step by step, so drift of a
shared machine falls on all of them alike.

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
import urllib.request
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


REF_WORLD = """
import json, os, sys
sys.path.insert(0, os.getcwd())
import django
django.setup()
from django.core.management import call_command
from bench.http_pages import build_world, signed_in_cookie
call_command("migrate", verbosity=0)
viewer, big, listener = build_world(follows=1000, live=50, listeners=500, prefix="b")
print(json.dumps({"space": big.pk, "cookies": [signed_in_cookie(viewer), signed_in_cookie(listener)]}))
"""


def ref_world(code: Path, base_url: str, db_name: str, env: dict[str, str]) -> dict[str, str]:
    """A database for an earlier commit's code, migrated and filled by that code itself; returns
    the environment its servers need, and (under "world") its Space id and cookies as JSON."""
    import psycopg

    admin = base_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    ref_env = {"DATABASE_URL": base_url.rsplit("/", 1)[0] + "/" + db_name}
    out = subprocess.run(
        [sys.executable, "-c", REF_WORLD],
        cwd=code,
        env={**os.environ, **env, **ref_env, "DJANGO_SETTINGS_MODULE": "spaces_project.settings"},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    return {**ref_env, "world": out.strip().splitlines()[-1]}


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used by `pid` and its children (gunicorn's workers), from /proc."""
    total = process_cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
        for child in children:
            try:
                total += tree_cpu_seconds(int(child))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return total


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
    cpu_before = tree_cpu_seconds(server_pid)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    cpu = tree_cpu_seconds(server_pid) - cpu_before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))

    def pct(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": round(rps, 1),
        # The server's CPU per request (all its processes): steadier than req/s on a shared
        # machine, and it shows where a page's cost is, whatever else the machine is doing.
        "cpu_ms": round(1000 * cpu / max(requests, 1), 3),
        "p50_ms": round(pct("50"), 2),
        "p99_ms": round(pct("99"), 2),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


NGINX_CONF = """worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log stderr error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{servers}
}}
"""
NGINX_SERVER = """    upstream u{port} {{ server 127.0.0.1:{upstream}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://u{upstream_name};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
"""


def capacity(steps: list[dict], bound_ms: float) -> dict:
    """The best step whose p99 is under the bound (None when none is)."""
    within = [s for s in steps if s["p99_ms"] < bound_ms and not s["non_2xx"] and not s["socket_errors"]]
    best = max(within, key=lambda s: s["rps"]) if within else None
    return {
        "capacity_rps": best["rps"] if best else None,
        "at_connections": best["connections"] if best else None,
        "p99_ms": best["p99_ms"] if best else None,
        # The server's CPU per request, median over the steps: the steadiest figure here.
        "cpu_ms": statistics.median(s["cpu_ms"] for s in steps),
        "steps": [[s["connections"], s["rps"], s["p99_ms"]] for s in steps],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="2,3", help="gunicorn process counts to measure")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn process")
    parser.add_argument("--steps", default="8,16,32,64", help="wrk connection counts")
    parser.add_argument("--seconds", type=int, default=4, help="per step")
    parser.add_argument("--p99-ms", type=float, default=250.0)
    parser.add_argument(
        "--compare-commit", metavar="REV", help="also serve the pages from this commit's code"
    )
    parser.add_argument("--db-name", default=DB_NAME)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres",
    )
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (apt-get install {tool})")
    workers = [int(w) for w in args.workers.split(",") if w]
    steps = [int(c) for c in args.steps.split(",") if c]

    static_root = tempfile.mkdtemp(prefix="spaces-static-")
    env = prepare_environment(args.database_url, static_root, args.db_name)
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
    cookies = {"": (signed_in_cookie(viewer), signed_in_cookie(listener))}
    space_ids = {"": big.pk}
    from django.db import connections

    connections.close_all()

    processes: list[subprocess.Popen] = []
    logs = ROOT / "var"

    def start(cmd: list[str], code: Path, log_name: str) -> subprocess.Popen:
        process = subprocess.Popen(
            cmd,
            cwd=code,
            # env last: the server's own cache setting wins; the earlier commit gets its database.
            env={**os.environ, **env, **(ref_env if code != ROOT else {})},
            stdout=subprocess.DEVNULL,
            stderr=open(logs / log_name, "wb"),  # noqa: SIM115 - lives as long as the server
        )
        processes.append(process)
        return process

    def serve_daphne(code: Path, name: str) -> tuple[int, subprocess.Popen]:
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "spaces_project.asgi:application",
        ]
        return port, start(cmd, code, f"bench-http-{name}.log")

    def serve_gunicorn(code: Path, name: str, n: int) -> tuple[int, subprocess.Popen]:
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "spaces_project.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
        ]
        cmd += ["--workers", str(n), "--threads", str(args.threads), "--worker-class", "gthread"]
        return port, start(cmd, code, f"bench-http-{name}.log")

    codes = {"": ROOT}
    worktree = checkout_commit(args.compare_commit) if args.compare_commit else None
    ref_env: dict[str, str] = {}
    if worktree is not None:
        codes["ref_"] = worktree
        ref_env = ref_world(worktree, args.database_url, f"{args.db_name}_ref", env)
        ref = json.loads(ref_env.pop("world"))
        cookies["ref_"] = tuple(ref["cookies"])
        space_ids["ref_"] = ref["space"]
    nginx_prefix = Path(tempfile.mkdtemp(prefix="spaces-nginx-"))
    try:
        backends: dict[str, tuple[int, subprocess.Popen]] = {}
        for prefix, code in codes.items():
            for n in workers:
                backends[f"{prefix}gunicorn_w{n}"] = serve_gunicorn(code, f"{prefix}gunicorn_w{n}", n)
            backends[f"{prefix}daphne"] = serve_daphne(code, f"{prefix}daphne")
        for port, process in backends.values():
            wait_for_port(port, process)
        # nginx in front of each gunicorn, as deployed; daphne is measured alone.
        fronts, blocks = {}, []
        for name, (port, _) in backends.items():
            if "gunicorn" in name:
                fronts[name] = free_port()
                blocks.append(
                    NGINX_SERVER.format(port=fronts[name], upstream=port, upstream_name=fronts[name])
                )
        for folder in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (nginx_prefix / folder).mkdir()
        conf = nginx_prefix / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=nginx_prefix, servers="".join(blocks)))
        nginx = start(["nginx", "-c", str(conf), "-p", str(nginx_prefix)], ROOT, "bench-http-nginx.log")
        for port in fronts.values():
            wait_for_port(port, nginx)

        def urls(name: str) -> dict[str, tuple[str, str | None]]:
            code = "ref_" if name.startswith("ref_") else ""
            home_cookie, space_cookie = cookies[code]
            return {
                "floor": ("/healthz", None),
                "home": ("/", home_cookie),
                "space": (f"/spaces/{space_ids[code]}/", space_cookie),
            }

        entry = {name: fronts.get(name, port) for name, (port, _) in backends.items()}
        for name, port in entry.items():
            for url_name, (path, cookie) in urls(name).items():
                # Each server must serve the signed-in page, not a signed-out one.
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}{path}", headers={"Cookie": cookie or ""}
                )
                with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own server
                    body = response.read().decode()
                assert url_name == "floor" or "Sign out" in body, f"{name} served {path} signed out"
                run_wrk(f"http://127.0.0.1:{port}{path}", cookie, 2, 8, backends[name][1].pid)  # warm-up
        results: dict[str, dict[str, list[dict]]] = {name: {u: [] for u in urls(name)} for name in backends}
        for url_name in ("floor", "home", "space"):
            for connections_ in steps:
                for name, port in entry.items():
                    path, cookie = urls(name)[url_name]
                    pid = backends[name][1].pid
                    figures = run_wrk(
                        f"http://127.0.0.1:{port}{path}", cookie, args.seconds, connections_, pid
                    )
                    results[name][url_name].append({"connections": connections_, **figures})
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()  # daphne waits for open connections; wrk has already gone
                process.wait(timeout=10)
        shutil.rmtree(static_root, ignore_errors=True)
        shutil.rmtree(nginx_prefix, ignore_errors=True)
        if worktree is not None:
            remove_checkout(worktree)

    shapes = {
        name: {url_name: capacity(runs, args.p99_ms) for url_name, runs in per_url.items()}
        for name, per_url in results.items()
    }
    summary = {}
    for name, per_url in shapes.items():
        summary[name] = {url_name: fig["capacity_rps"] for url_name, fig in per_url.items()}
    print(
        json.dumps(
            {
                "bench": "http_pages",
                "database": "PostgreSQL, DEBUG off, gunicorn gthread x" + str(args.threads) + " threads",
                "p99_bound_ms": args.p99_ms,
                "seconds_per_step": args.seconds,
                "cpus": os.cpu_count(),
                "load_before": os.getloadavg()[0],
                "ref_commit": args.compare_commit,
                "capacity_rps": summary,
                "shapes": shapes,
                "queries": counts,
                "queries_constant": counts["small"] == counts["full"],
            }
        )
    )


if __name__ == "__main__":
    main()
