"""Peak memory of a served process while people upload pictures meant to exhaust it.

    .venv/bin/python bench/upload_memory.py [--compare-commit REV]

Serves the embedded default (`make run`'s shape: one daphne, SQLite, DEBUG on) from this checkout
and, with --compare-commit, from REV's code in a temporary git worktree, each in a fresh process
with its own database. For each case a fresh server is started, one person signs in, and the case
is uploaded through the real profile form; the figure is the growth of the server's peak resident
memory (VmHWM) over its resident memory just before, in MB, with the wall time of the slowest upload
and the HTTP status answered:

* `bomb_40mp`: a 154 KB PNG of 6300 x 6300 px (under the old 40 MP limit);
* `bomb_12mp`: a PNG of 3460 x 3460 px, just under the 12 MP budget;
* `three_40mp`, `three_12mp`: three people uploading that picture at the same moment;
* `body_50mb`: a 50 MB file in the form (the size check of the form comes after it is read).

A `ref_` prefix marks REV's figures. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import checkout_commit, free_port, remove_checkout, wait_for_port  # noqa: E402

SIGN_IN = """
import django; django.setup()
from django.test import Client
from accounts.models import User
for i in range(3):
    client = Client()  # one browser each: signing another person in ends the session before
    user = User.objects.create_user(username=f"uploader{i}", email=f"u{i}@example.com", password="x")
    client.force_login(user)
    page = client.get("/settings/profile/")
    print(client.cookies["sessionid"].value, client.cookies["csrftoken"].value)
"""


def png(side: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (40, 90, 200)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def multipart(fields: dict[str, str], file_bytes: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for key, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="avatar"; filename="{name}"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + file_bytes
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of the process, in kB."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
    return rss, hwm


def upload(port: int, session: str, csrf: str, body: bytes, content_type: str) -> tuple[int, float]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/settings/profile/",
        data=body,
        method="POST",
        headers={
            "Content-Type": content_type,
            "Cookie": f"sessionid={session}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
            "Referer": f"http://127.0.0.1:{port}/settings/profile/",
        },
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - loopback only
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (ConnectionError, urllib.error.URLError):
        status = 0  # the server closed the connection before reading the body
    return status, time.monotonic() - started


def measure(code: Path, case: str, payload: bytes, parallel: int) -> dict:
    var = Path(tempfile.mkdtemp(prefix="spaces-upload-bench-"))
    env = {
        **os.environ,
        "DEBUG": "1",
        "SPACES_VAR_DIR": str(var),
        "DJANGO_SETTINGS_MODULE": "spaces_project.settings",
        "LOG_LEVEL": "ERROR",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    }
    for name in ("DATABASE_URL", "REDIS_URL", "JANUS_URL", "STRIPE_SECRET_KEY"):
        env.pop(name, None)
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"],
            cwd=code,
            env=env,
            check=True,
            capture_output=True,
        )
        people = subprocess.run(
            [sys.executable, "-c", SIGN_IN], cwd=code, env=env, check=True, capture_output=True, text=True
        ).stdout.split("\n")
        cookies = [line.split() for line in people if line.strip()]
        port = free_port()
        server = subprocess.Popen(
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
            cwd=code,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, server)
            # One page first, so the baseline includes what serving any request loads.
            upload(
                port,
                *cookies[0],
                *multipart({"display_name": "", "bio": "", "time_zone": "UTC"}, b"", "x.png"),
            )
            time.sleep(0.5)
            before, _ = memory_kb(server.pid)
            bodies = [
                multipart({"display_name": "", "bio": "", "time_zone": "UTC"}, payload, f"{case}.png")
            ] * parallel
            results: list[tuple[int, float]] = []
            threads = [
                threading.Thread(target=lambda i=i, b=b: results.append(upload(port, *cookies[i % 3], *b)))
                for i, b in enumerate(bodies)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            _, peak = memory_kb(server.pid)
            return {
                "peak_growth_mb": round((peak - before) / 1024, 1),
                "slowest_s": round(max(r[1] for r in results), 2),
                "status": sorted({r[0] for r in results}),
            }
        finally:
            server.terminate()
            server.wait(timeout=20)
    finally:
        shutil.rmtree(var, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--compare-commit", help="also measure this commit's code")
    args = parser.parse_args()
    bomb40, bomb12 = png(6300), png(3460)
    cases = [
        ("bomb_40mp", bomb40, 1),
        ("bomb_12mp", bomb12, 1),
        ("three_40mp", bomb40, 3),
        ("three_12mp", bomb12, 3),
        ("body_50mb", b"\x89PNG" + b"x" * (50 * 1024 * 1024), 1),
    ]
    codes = {"": ROOT}
    worktree = checkout_commit(args.compare_commit) if args.compare_commit else None
    if worktree:
        codes["ref_"] = worktree
    figures: dict = {"bomb_40mp_file_kb": len(bomb40) // 1024, "bomb_12mp_file_kb": len(bomb12) // 1024}
    try:
        for case, payload, parallel in cases:
            for prefix, code in codes.items():
                figures[f"{prefix}{case}"] = measure(code, case, payload, parallel)
    finally:
        if worktree:
            remove_checkout(worktree)
    if args.compare_commit:
        figures["compare_commit"] = args.compare_commit
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
