"""Small helpers every benchmark shares: ports, waiting for a server, percentiles, CPU used, an
earlier commit's code checked out beside this one."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until something listens on `port`; fails at once if `proc` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing on port {port}")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far, all its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by `pid` and every process below it (Chromium's renderers and
    audio service run as children of its browser process). A process that ended is not counted."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += process_cpu_seconds(current)
        except (OSError, IndexError, ValueError):
            continue
        todo.extend(children.get(current, []))
    return total


def pid_with_argument(argument: str) -> int:
    """The process whose command line holds `argument` (a tag passed on purpose to find it) and
    no `--type=` (Chromium gives its child processes a type and may copy switches to them)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
            if argument.encode() in args and not any(a.startswith(b"--type=") for a in args):
                return int(cmdline.parent.name)
        except OSError:
            continue
    raise LookupError(f"no process started with {argument}")


def checkout_commit(rev: str) -> Path:
    """A temporary git worktree of `rev` (to run an earlier commit's code beside this one, in the
    same run); give it back with `remove_checkout`."""
    repo = Path(__file__).resolve().parent.parent
    path = Path(tempfile.mkdtemp(prefix="spaces-ref-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), rev], cwd=repo, check=True, capture_output=True
    )
    return path


def remove_checkout(path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    subprocess.run(
        ["git", "worktree", "remove", "--force", str(path)], cwd=repo, check=False, capture_output=True
    )


def signed_in_session_data(user) -> dict[str, str]:
    """What Django's `login()` puts in a session for `user`, to write sessions in bulk."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    return {
        SESSION_KEY: str(user.pk),
        BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0],
        HASH_SESSION_KEY: user.get_session_auth_hash(),
    }


def origin_for(url: str) -> str:
    """The Origin a browser sends to `url` (ws://host:port/… → http://host:port): the server's
    Origin check compares host and port."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"


async def signed_in_socket(url: str, session_key: str):
    """A websocket to `url` as the person whose session this is, as their browser opens it."""
    from websockets.asyncio.client import connect

    return await connect(
        url,
        additional_headers=[("Cookie", f"sessionid={session_key}")],
        origin=origin_for(url),
        compression=None,
        ping_interval=None,
        max_queue=None,
    )


def browser_bench_django(prefix: str) -> Path:
    """A fresh work folder with a migrated SQLite database, Django set up for a benchmark that
    drives Chromium with Playwright's sync API (the ORM runs between its calls), no Janus unless
    the benchmark starts one. Returns the folder."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(
        {
            "DEBUG": "1",
            "SQLITE_PATH": str(workdir / "bench.sqlite3"),
            "DJANGO_SETTINGS_MODULE": "spaces_project.settings",
            "DJANGO_ALLOW_ASYNC_UNSAFE": "true",
            "JANUS_URL": "",
        }
    )
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return workdir
