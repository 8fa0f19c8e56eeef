"""Machine instructions Django spends on each page, counted by valgrind: steady where timings are not.

    .venv/bin/python bench/page_instructions.py [--requests 50] [--urls floor,home,space]

The same world and URLs as bench/http_pages.py (a viewer following 1,000 accounts, 50 live
Spaces, a Space with 500 listeners; its own PostgreSQL database `spaces_bench_instr`), but no
server: each URL is requested `--requests` times in one process through Django's WSGI handler,
after ten warm-up requests and the collector settled as the server settles it, under
`valgrind --tool=callgrind`, counting only the instructions inside the loop (collection is on
only within the `itertools.starmap` that drives it, which nothing else uses). The shared home
sections are kept for the whole run (as under load, where they are rebuilt once every few seconds
for hundreds of pages). What the
server around Django costs (daphne, the event loop, thread hand-offs) is not in these figures:
http_pages.py measures that. PostgreSQL's own work is in another process and not counted either.

A shared VM's speed drifts by a quarter between minutes; an instruction count for the same code
and data moves by well under 1 %, so it shows what a change to a page's code did. Needs valgrind
(apt-get install valgrind). Prints one JSON line: millions of instructions per request.

With --compare-commit REV the same counts are taken of an earlier commit's code (a temporary git
worktree; it must have the same migrations), on the same data.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The counting runs import the project from SPACES_BENCH_CODE when set (--compare-commit).
sys.path.insert(0, os.environ.get("SPACES_BENCH_CODE", str(ROOT)))

DB_NAME = "spaces_bench_instr"


def prepare(database_url: str, static_root: str) -> tuple[dict, dict]:
    """Build the world; returns (environment for the counting runs, what they request)."""
    from bench.http_pages import build_world, prepare_environment, signed_in_cookie

    env = prepare_environment(database_url, static_root, db_name=DB_NAME)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spaces_project.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    viewer, big, listener = build_world(follows=1000, live=50, listeners=500, prefix="b")
    targets = {
        "floor": ["/healthz", ""],
        "home": ["/", signed_in_cookie(viewer)],
        "space": [f"/spaces/{big.pk}/", signed_in_cookie(listener)],
    }
    # Rebuilt once per run, not every 3 s: a valgrind run is ~50 times slower than real time.
    env["SPACES_HOME_CACHE_SECONDS"] = "3600"
    return env, targets


def count(path: str, cookie: str, requests: int) -> None:
    """Inside valgrind: serve `path` `requests` times (only this loop's instructions are counted)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spaces_project.settings")
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory

    from spaces_project.handler import settle_garbage_collector

    handler = WSGIHandler()
    request_environ = RequestFactory(HTTP_COOKIE=cookie, SERVER_NAME="127.0.0.1").get(path).environ

    def serve() -> None:
        environ = {**request_environ, "wsgi.input": io.BytesIO(b"")}
        statuses: list[str] = []
        body = handler(environ, lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(body)
        body.close()
        if not statuses[0].startswith("200"):
            raise SystemExit(f"{path} answered {statuses[0]}")

    for _ in range(10):
        serve()
    settle_garbage_collector()
    # valgrind collects inside `starmap_next` only, which nothing in Django or the project calls.
    list(itertools.starmap(serve, itertools.repeat((), requests)))


def _count(name: str, path: str, cookie: str, requests: int, env: dict, code: Path) -> float:
    """Millions of instructions per request for one URL, served by the code in `code`."""
    with tempfile.TemporaryDirectory() as out:
        run = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=starmap_next",
                f"--callgrind-out-file={out}/callgrind.out",
                sys.executable,
                str(ROOT / "bench" / "page_instructions.py"),
                "--requests",
                str(requests),
                "--inner",
                path,
                cookie,
            ],
            cwd=code,
            env={**os.environ, **env, "PYTHONHASHSEED": "0", "SPACES_BENCH_CODE": str(code)},
            capture_output=True,
            text=True,
            timeout=1800,
        )
    if run.returncode != 0:
        sys.exit(f"{name}: {run.stdout[-2000:]}{run.stderr[-2000:]}")
    return round(int(re.search(r"Collected : (\d+)", run.stderr).group(1)) / requests / 1e6, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--urls", default="floor,home,space")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres",
    )
    parser.add_argument("--compare-commit", metavar="REV", help="also count this commit's code")
    parser.add_argument("--inner", nargs=2, metavar=("PATH", "COOKIE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        count(*args.inner, args.requests)
        return
    from bench.common import checkout_commit, remove_checkout  # outer run only: REV's tree may lack them

    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    static_root = tempfile.mkdtemp(prefix="spaces-static-")
    try:
        env, targets = prepare(args.database_url, static_root)
        names = args.urls.split(",")
        jobs = [(name, ROOT) for name in names]
        worktree = checkout_commit(args.compare_commit) if args.compare_commit else None
        if worktree is not None:
            jobs += [(name, worktree) for name in names]
        try:
            # Two at a time: counts do not depend on what else the machine runs.
            with ThreadPoolExecutor(max_workers=2) as pool:
                counted = list(
                    pool.map(lambda job: _count(job[0], *targets[job[0]], args.requests, env, job[1]), jobs)
                )
        finally:
            if worktree is not None:
                remove_checkout(worktree)
        figures = {
            ("ref_" if code != ROOT else "") + name: n for (name, code), n in zip(jobs, counted, strict=True)
        }
        if args.compare_commit:
            figures["ref_commit"] = args.compare_commit
    finally:
        shutil.rmtree(static_root, ignore_errors=True)
    print(
        json.dumps(
            {
                "bench": "page_instructions",
                "unit": "million instructions per request (Django's part, in-process)",
                "requests": args.requests,
                **figures,
            }
        )
    )


if __name__ == "__main__":
    main()
