"""Shared fixtures: factories, a real ASGI server in a subprocess, and a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from tests.factories import UserFactory
from tests.strict import require

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


# Tests create and end Spaces faster than the home page's few-second cache would notice; the
# cache has its own test (tests/test_home.py). Child processes (daphne) read this at start.
os.environ["SPACES_HOME_CACHE_SECONDS"] = "0"
os.environ["SPACES_VIEWER_CACHE_SECONDS"] = "0"


@pytest.fixture(autouse=True)
def _no_home_cache(settings):
    settings.SPACES_HOME_CACHE_SECONDS = 0
    settings.SPACES_VIEWER_CACHE_SECONDS = 0


@pytest.fixture
def user_factory(db):
    return UserFactory


@pytest.fixture
def user(db):
    return UserFactory()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


def child_database_env() -> dict[str, str]:
    """Environment that points a child process at the database this test is using."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"SQLITE_PATH": str(settings_dict["NAME"])}
    user = settings_dict.get("USER") or "postgres"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return {"DATABASE_URL": f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"}


class AsgiServer:
    def __init__(self, url: str, proc: subprocess.Popen, log: Path):
        self.url = url
        self.proc = proc
        self.log = log

    def ws_url(self, path: str) -> str:
        return self.url.replace("http://", "ws://") + path


def start_asgi_server(extra_env: dict[str, str] | None = None, name: str = "daphne") -> AsgiServer:
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / f"{name}-{port}.log"
    env = {**os.environ, "DEBUG": "1", **child_database_env(), **(extra_env or {})}
    proc = subprocess.Popen(
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
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc=proc)
    except Exception:
        proc.kill()
        raise RuntimeError(f"daphne did not start; see {log}:\n{log.read_text()[-2000:]}")
    return AsgiServer(f"http://127.0.0.1:{port}", proc, log)


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def asgi_server(transactional_db):
    """A real daphne serving the project against the test database (committed data only)."""
    server = start_asgi_server()
    yield server
    stop_process(server.proc)


@pytest.fixture(scope="module")
def pw():
    """Playwright, once per test module. Its sync API keeps an event loop running in this thread
    while open, so it must close before the next module's asyncio tests (and other modules'
    browsers); the ORM calls between its steps are fine, hence DJANGO_ALLOW_ASYNC_UNSAFE."""
    require(os.path.exists(CHROMIUM), f"Chromium at {CHROMIUM}")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(pw):
    """One plain headless Chromium per test module (audio tests launch their own with a fake mic)."""
    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def session_cookie_for(user, url: str) -> dict:
    client = Client()
    client.force_login(user)
    return {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": url}


@pytest.fixture
def browser_context(chromium):
    """Make a fresh context per person: `browser_context(user=None, width=390, height=844, server=...)`."""
    contexts = []

    def make(*, server: AsgiServer, user=None, width: int = 1280, height: int = 800, **kwargs):
        context = chromium.new_context(viewport={"width": width, "height": height}, **kwargs)
        context.set_default_timeout(10_000)
        if user is not None:
            context.add_cookies([session_cookie_for(user, server.url)])
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


from tests.janus_fixture import janus_server  # noqa: E402, F401


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` or `redis` run in the pass that has that engine configured.

    CI runs the suite twice (SQLite, then PostgreSQL + Redis), so every test runs in one of the two;
    a deselected test is listed as such, never reported as a pass. In strict mode a configured
    engine that cannot be reached fails the test through tests.strict.require.
    """
    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    has_redis = bool(os.environ.get("REDIS_URL"))
    keep, drop = [], []
    for item in items:
        if (
            (item.get_closest_marker("postgres") and not on_postgres)
            or (item.get_closest_marker("redis") and not has_redis)
            or (item.get_closest_marker("embedded") and has_redis)
        ):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
