"""A real Janus for tests: its own config folder, free ports on 127.0.0.1, killed at teardown.

Register it in tests/conftest.py with
    from tests.janus_fixture import janus_server  # noqa: F401

The config is written from scratch rather than copied from /etc/janus: the Debian
samples declare demo rooms and mountpoints on fixed ports, which would collide
between parallel runs and hide what the tests really depend on. Only the HTTP
transport and the AudioBridge and Streaming plugins are loaded.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.strict import require_binary

JANUS_LIB_DIR = Path(os.environ.get("JANUS_LIB_DIR", "/usr/lib/x86_64-linux-gnu/janus"))
KEEP_PLUGINS = {"libjanus_audiobridge.so", "libjanus_streaming.so"}
KEEP_TRANSPORTS = {"libjanus_http.so"}
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
# One block of UDP ports, split between the core (ICE) and the two plugins.
RTP_BLOCK = 300


@dataclass(frozen=True)
class JanusServer:
    """Where the test Janus listens and the secrets it was configured with."""

    url: str
    admin_url: str
    api_secret: str
    admin_secret: str
    admin_key: str
    config_dir: Path
    log_path: Path
    pid: int

    def settings(self) -> dict[str, object]:
        """The Django settings that point rooms.janus at this server."""
        return {
            "JANUS_URL": self.url,
            "JANUS_API_SECRET": self.api_secret,
            "JANUS_ADMIN_KEY": self.admin_key,
            "JANUS_ADMIN_URL": self.admin_url,
            "JANUS_ADMIN_SECRET": self.admin_secret,
        }

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _udp_block_is_free(start: int, size: int) -> bool:
    sockets: list[socket.socket] = []
    try:
        for port in range(start, start + size):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sockets.append(sock)
            sock.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()


def _free_udp_block(size: int) -> int:
    """First port of `size` consecutive free UDP ports, picked at random so parallel runs differ."""
    for _ in range(50):
        start = 20000 + secrets.randbelow(400) * 100
        if _udp_block_is_free(start, size):
            return start
    raise RuntimeError(f"no block of {size} free UDP ports between 20000 and 60000")


def _others(folder: Path, keep: set[str]) -> str:
    names = sorted(p.name for p in folder.glob("*.so")) if folder.is_dir() else []
    return ",".join(name for name in names if name not in keep)


def write_config(
    config_dir: Path,
    *,
    http_port: int,
    admin_port: int,
    rtp_start: int,
    api_secret: str,
    admin_secret: str,
    admin_key: str,
) -> None:
    """Write janus.jcfg, the HTTP transport and the two plugin configs into `config_dir`."""
    third = RTP_BLOCK // 3
    core_range = f"{rtp_start}-{rtp_start + third - 1}"
    bridge_range = f"{rtp_start + third}-{rtp_start + 2 * third - 1}"
    streaming_range = f"{rtp_start + 2 * third}-{rtp_start + RTP_BLOCK - 1}"
    api_secret_line = f'\tapi_secret = "{api_secret}"\n' if api_secret else ""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "janus.jcfg").write_text(
        "general: {\n"
        f'\tconfigs_folder = "{config_dir}"\n'
        f'\tplugins_folder = "{JANUS_LIB_DIR / "plugins"}"\n'
        f'\ttransports_folder = "{JANUS_LIB_DIR / "transports"}"\n'
        f'\tevents_folder = "{JANUS_LIB_DIR / "events"}"\n'
        f'\tloggers_folder = "{JANUS_LIB_DIR / "loggers"}"\n'
        "\tdebug_level = 4\n"
        "\tdebug_colors = false\n"
        '\tserver_name = "spaces-test"\n'
        '\tinterface = "127.0.0.1"\n'
        "\tsession_timeout = 60\n"
        f'\tadmin_secret = "{admin_secret}"\n'
        f"{api_secret_line}"
        "}\n"
        "media: {\n"
        f'\trtp_port_range = "{core_range}"\n'
        "}\n"
        # Loopback only: no STUN, no mDNS, candidates on 127.0.0.1.
        "nat: {\n"
        "\tnice_debug = false\n"
        "\tignore_mdns = true\n"
        '\tice_enforce_list = "127.0.0.1"\n'
        "}\n"
        "plugins: {\n"
        f'\tdisable = "{_others(JANUS_LIB_DIR / "plugins", KEEP_PLUGINS)}"\n'
        "}\n"
        "transports: {\n"
        f'\tdisable = "{_others(JANUS_LIB_DIR / "transports", KEEP_TRANSPORTS)}"\n'
        "}\n"
        "loggers: {\n"
        f'\tdisable = "{_others(JANUS_LIB_DIR / "loggers", set())}"\n'
        "}\n"
        "events: {\n"
        "\tbroadcast = false\n"
        "}\n"
    )
    (config_dir / "janus.transport.http.jcfg").write_text(
        "general: {\n"
        '\tjson = "plain"\n'
        '\tbase_path = "/janus"\n'
        "\thttp = true\n"
        f"\tport = {http_port}\n"
        '\tip = "127.0.0.1"\n'
        "\thttps = false\n"
        "}\n"
        "admin: {\n"
        '\tadmin_base_path = "/admin"\n'
        "\tadmin_http = true\n"
        f"\tadmin_port = {admin_port}\n"
        '\tadmin_ip = "127.0.0.1"\n'
        "\tadmin_https = false\n"
        "}\n"
    )
    (config_dir / "janus.plugin.audiobridge.jcfg").write_text(
        "general: {\n"
        f'\tadmin_key = "{admin_key}"\n'
        "\tlock_rtp_forward = true\n"
        "\tlock_play_file = true\n"
        "\tevents = false\n"
        f'\trtp_port_range = "{bridge_range}"\n'
        "}\n"
    )
    (config_dir / "janus.plugin.streaming.jcfg").write_text(
        "general: {\n"
        f'\tadmin_key = "{admin_key}"\n'
        "\tevents = false\n"
        f'\trtp_port_range = "{streaming_range}"\n'
        "}\n"
    )


def _answers_info(url: str, api_secret: str) -> bool:
    body = {"janus": "info", "transaction": secrets.token_hex(6)}
    if api_secret:
        body["apisecret"] = api_secret
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return json.loads(response.read()).get("janus") == "server_info"
    except (OSError, ValueError, urllib.error.URLError):
        return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def start_janus(
    workdir: Path, *, binary: str = "janus", api_secret: str | None = None, admin_key: str | None = None
) -> tuple[subprocess.Popen, JanusServer]:
    """Start Janus with a fresh config in `workdir`; return once its HTTP API answers `info`.

    `api_secret=None` picks a random one, so the client's `apisecret` path is exercised;
    pass "" to run without one. Relays share the AudioBridge Janus's `api_secret` and
    `admin_key` (Django has one of each), so pass them to start one.
    """
    config_dir = workdir / "conf"
    log_path = workdir / "janus.log"
    api_secret = secrets.token_urlsafe(12) if api_secret is None else api_secret
    admin_secret = secrets.token_urlsafe(12)
    admin_key = admin_key or secrets.token_urlsafe(12)
    http_port = _free_tcp_port()
    admin_port = _free_tcp_port()
    while admin_port == http_port:
        admin_port = _free_tcp_port()
    write_config(
        config_dir,
        http_port=http_port,
        admin_port=admin_port,
        rtp_start=_free_udp_block(RTP_BLOCK),
        api_secret=api_secret,
        admin_secret=admin_secret,
        admin_key=admin_key,
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                "--configs-folder",
                str(config_dir),
                "--config",
                str(config_dir / "janus.jcfg"),
                "--plugins-folder",
                str(JANUS_LIB_DIR / "plugins"),
                "--disable-colors",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = JanusServer(
        url=f"http://127.0.0.1:{http_port}/janus",
        admin_url=f"http://127.0.0.1:{admin_port}/admin",
        api_secret=api_secret,
        admin_secret=admin_secret,
        admin_key=admin_key,
        config_dir=config_dir,
        log_path=log_path,
        pid=process.pid,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"janus exited with {process.returncode} at startup:\n{server.log_tail()}")
        if _answers_info(server.url, api_secret):
            return process, server
        time.sleep(0.1)
    _stop(process)
    raise RuntimeError(
        f"janus did not answer on {server.url} within {START_TIMEOUT:.0f}s:\n{server.log_tail()}"
    )


def stop_janus(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if Janus has not exited after STOP_TIMEOUT seconds."""
    _stop(process)


@pytest.fixture(scope="session")
def janus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JanusServer]:
    """A running Janus (HTTP + admin API on 127.0.0.1, AudioBridge and Streaming plugins)."""
    binary = require_binary("janus")
    process, server = start_janus(tmp_path_factory.mktemp("janus"), binary=binary)
    try:
        yield server
    finally:
        stop_janus(process)


def start_relays(
    workdir: Path, bridge: JanusServer, *, count: int = 2, binary: str = "janus"
) -> list[tuple[subprocess.Popen, JanusServer]]:
    """`count` more Janus processes (Streaming relays) with the secrets of `bridge`, on their own
    free ports; stop each with stop_janus."""
    started: list[tuple[subprocess.Popen, JanusServer]] = []
    try:
        for number in range(count):
            started.append(
                start_janus(
                    workdir / f"relay-{number}",
                    binary=binary,
                    api_secret=bridge.api_secret,
                    admin_key=bridge.admin_key,
                )
            )
    except BaseException:
        for process, _ in started:
            _stop(process)
        raise
    return started
