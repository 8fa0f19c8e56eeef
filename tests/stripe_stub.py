"""A small local HTTP server standing in for Stripe's API, for tests.

The real `stripe` library is pointed at it (STRIPE_API_BASE → stripe.api_base), so what is tested is
exactly what the library sends over the wire: form-encoded bodies, the secret key, idempotency keys.
It records every request and answers with objects shaped like Stripe's, for the endpoints ticketing
uses. Behaviour the tests need (a failure, a session that was already paid) is switched on per test.

Its own rules mirror Stripe's where they matter to us: an idempotency key replayed returns the first
answer, and a Checkout Session can only be expired while it is open.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]

    def __getitem__(self, key: str) -> str:
        return self.params[key]

    def get(self, key: str, default=None):
        return self.params.get(key, default)


@dataclass
class StripeStub:
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    sessions: dict[str, dict] = field(default_factory=dict)
    # path prefix → (status, error body) to answer instead of succeeding.
    failures: dict[str, tuple[int, dict]] = field(default_factory=dict)
    # path prefix → an event the answer waits for (a Stripe that hangs until the test lets it go).
    stalls: dict[str, threading.Event] = field(default_factory=dict)
    _idempotent: dict[str, tuple[int, dict]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, method: str, path_prefix: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def fail(
        self, path_prefix: str, status: int = 500, code: str = "api_error", message: str = "stub failure"
    ):
        kind = "invalid_request_error" if status == 400 else "api_error"
        self.failures[path_prefix] = (status, {"error": {"type": kind, "code": code, "message": message}})

    def mark_paid(self, session_id: str) -> None:
        self.sessions[session_id]["status"] = "complete"
        self.sessions[session_id]["payment_status"] = "paid"

    # --- request handling ---------------------------------------------------------

    def handle(
        self, method: str, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(Request(method, path, params, headers))
            for prefix, answer in self.failures.items():
                if path.startswith(prefix):
                    return answer
            key = headers.get("idempotency-key")
            if method == "POST" and key and key in self._idempotent:
                return self._idempotent[key]
            answer = self._route(method, path, params)
            if method == "POST" and key:
                self._idempotent[key] = answer
            return answer

    def _route(self, method: str, path: str, p: dict[str, str]) -> tuple[int, dict]:
        now = int(time.time())
        if method == "POST" and path == "/v1/accounts":
            return 200, {
                "id": f"acct_{secrets.token_hex(8)}",
                "object": "account",
                "type": p.get("type"),
                "email": p.get("email"),
                "charges_enabled": False,
                "payouts_enabled": False,
                "details_submitted": False,
            }
        if method == "POST" and path == "/v1/account_links":
            return 200, {
                "object": "account_link",
                "created": now,
                "expires_at": now + 300,
                "url": f"https://connect.stripe.test/setup/e/{p['account']}/{secrets.token_hex(6)}",
            }
        if method == "POST" and path == "/v1/checkout/sessions":
            session_id = f"cs_test_{secrets.token_hex(12)}"
            session = {
                "id": session_id,
                "object": "checkout.session",
                "mode": p.get("mode"),
                "status": "open",
                "payment_status": "unpaid",
                "amount_total": int(p["line_items[0][price_data][unit_amount]"]),
                "currency": p["line_items[0][price_data][currency]"],
                "client_reference_id": p.get("client_reference_id"),
                "metadata": {k[9:-1]: v for k, v in p.items() if k.startswith("metadata[")},
                "expires_at": int(p.get("expires_at", now + 86400)),
                "payment_intent": None,
                "url": f"https://checkout.stripe.test/c/pay/{session_id}",
            }
            self.sessions[session_id] = session
            return 200, session
        if path.startswith("/v1/checkout/sessions/"):
            parts = path.split("/")
            session = self.sessions.get(parts[4])
            if session is None:
                return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing"}}
            if method == "POST" and len(parts) == 6 and parts[5] == "expire":
                if session["status"] != "open":
                    return 400, {
                        "error": {
                            "type": "invalid_request_error",
                            "message": f"Only Checkout Sessions with a status in [open] can be expired. "
                            f"This Checkout Session has a status of {session['status']}.",
                        }
                    }
                session["status"] = "expired"
                return 200, session
            if method == "GET":
                return 200, session
        if method == "POST" and path == "/v1/refunds":
            return 200, {
                "id": f"re_{secrets.token_hex(8)}",
                "object": "refund",
                "payment_intent": p.get("payment_intent"),
                "status": "succeeded",
                "metadata": {k[9:-1]: v for k, v in p.items() if k.startswith("metadata[")},
            }
        return 404, {"error": {"type": "invalid_request_error", "message": f"stub has no {method} {path}"}}


def start_stripe_stub() -> tuple[StripeStub, ThreadingHTTPServer]:
    stub = StripeStub()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            params = dict(parse_qsl(body or query, keep_blank_values=True))
            headers = {k.lower(): v for k, v in self.headers.items()}
            for prefix, released in list(stub.stalls.items()):
                if path.startswith(prefix):
                    released.wait(30)
            status, payload = stub.handle(method, path, params, headers)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return stub, server
