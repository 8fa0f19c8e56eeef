"""`make run`'s process set (the Procfile through honcho) serves the site on the embedded default."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import ARTIFACTS, ROOT, free_port, wait_for_port

BIN = Path(sys.executable).parent


def test_procfile_serves_pages_with_a_worker_and_beat(tmp_path):
    port = free_port()
    env = {
        **{
            k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}
        },
        "DEBUG": "1",
        "SPACES_VAR_DIR": str(tmp_path),
        "SQLITE_PATH": str(tmp_path / "spaces.sqlite3"),
        "SPACES_PORT": str(port),
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "procfile.log"
    with log_path.open("wb") as log:
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "start", "-f", "Procfile"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_port(port, timeout=60, proc=honcho)
            for path in ("/", "/accounts/signup/", "/healthz"):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as response:  # noqa: S310
                    assert response.status == 200, path
            # The worker and beat start independently; wait for both rather than one.
            markers = (b"ready.", b"beat: Starting...")
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not all(m in log_path.read_bytes() for m in markers):
                time.sleep(0.5)
            text = log_path.read_text(errors="replace")
            assert "ready." in text, text[-2000:]  # the Celery worker is up
            assert "beat: Starting..." in text, text[-2000:]  # and beat
        finally:
            os.killpg(honcho.pid, signal.SIGTERM)
            try:
                honcho.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(honcho.pid, signal.SIGKILL)
                honcho.wait(timeout=10)
