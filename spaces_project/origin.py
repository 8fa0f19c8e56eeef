"""Which pages may open our websockets: the site itself, port included.

Channels' AllowedHostsOriginValidator compares the Origin's host name with ALLOWED_HOSTS and ignores
its port, so a page served by anything else on the same host (http://localhost:9999) could open a
socket with the visitor's cookies. Here the Origin must name the host *and port* the request was
sent to (its Host header); behind a proxy that forwards Host without a port (nginx's `$host`), that
is the scheme's default port. CSRF_TRUSTED_ORIGINS are let in as they are, as Django does for forms.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def _port(value: str, default: int | None) -> int | None:
    try:
        return int(value) if value else default
    except ValueError:
        return None


def origin_allowed(origin: str, host: str | None) -> bool:
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    try:
        parts = urlsplit(origin)
        origin_port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return False
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or origin_port is None:
        return False
    if not validate_host(parts.hostname, settings.ALLOWED_HOSTS):
        return False
    if host is None:  # not from a browser (every browser sends Host)
        return True
    host_name, host_port = split_domain_port(host)
    return (
        host_name == parts.hostname.lower() and _port(host_port, DEFAULT_PORTS[parts.scheme]) == origin_port
    )


class SameOriginValidator:
    """ASGI middleware: a websocket handshake whose Origin isn't this site is refused (403)."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            headers = dict(scope.get("headers") or [])
            origin = headers.get(b"origin", b"").decode("latin1")
            host = headers.get(b"host")
            if not origin or not origin_allowed(origin, host.decode("latin1") if host else None):
                return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
