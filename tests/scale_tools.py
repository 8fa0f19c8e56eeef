"""Processes for the scale-out and fault tests: daphne, a private redis-server, a cuttable TCP proxy,
and a small websocket client that speaks the Space protocol."""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import threading
import time
from contextlib import suppress

from django.test import Client
from websockets.sync.client import connect

from tests.conftest import ARTIFACTS, free_port, stop_process, wait_for_port


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class SpaceClient:
    """One browser tab's websocket to a Space, reduced to what tests need."""

    def __init__(self, base_ws: str, space_id: int, cookie: str):
        self.ws = connect(
            f"{base_ws}/ws/spaces/{space_id}/",
            # What a browser sends: the page's origin, port included (base_ws is ws://host:port).
            origin="http" + base_ws.removeprefix("ws"),
            additional_headers={"Cookie": f"sessionid={cookie}"},
            open_timeout=10,
            proxy=None,
            legacy=True,
        )

    def send(self, **action) -> None:
        self.ws.send(json.dumps(action))

    def next(self, type_: str, timeout: float = 5.0, where=lambda m: True) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {type_!r} event within {timeout}s")
            msg = json.loads(self.ws.recv(timeout=remaining))
            if msg.get("type") == type_ and where(msg):
                return msg

    def close(self) -> None:
        with suppress(Exception):
            self.ws.close()


class RedisServer:
    """A private redis-server on a free port, so a test can restart it without touching anyone else's."""

    def __init__(self):
        self.binary = shutil.which("redis-server")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        log = (ARTIFACTS / f"redis-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


class CuttableProxy:
    """A TCP proxy to a real server that a test can cut (refuse and drop everything) and restore."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.listener: socket.socket | None = None
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.open()

    def open(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            return
        finally:
            for s in (a, b):
                with suppress(OSError):
                    s.close()

    def cut(self) -> None:
        """The server becomes unreachable: new connections are refused, open ones drop."""
        # shutdown() wakes the thread blocked in accept(); close() alone would leave it listening.
        with suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        with suppress(OSError):
            self.listener.close()
        with self.lock:
            for s in self.conns:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
            self.conns.clear()

    def restore(self) -> None:
        self.open()


def kill_hard(proc: subprocess.Popen) -> None:
    """SIGKILL: the process gets no chance to say goodbye to its sockets or its presence rows."""
    proc.kill()
    proc.wait(timeout=10)


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}
