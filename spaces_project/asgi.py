"""ASGI entry point: websockets go to the Channels routes, and HTTP to Django's own ASGI handler
(which `make run` uses to serve both from one daphne; in production gunicorn serves pages)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spaces_project.settings")
# Set up Django (and load the apps) before the routes import consumers and models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402

from .middleware import body_too_large, too_large_response  # noqa: E402
from .origin import SameOriginValidator  # noqa: E402
from .routing import websocket_urlpatterns  # noqa: E402


class RequestSizeGuard:
    """Django's ASGI handler reads the whole body before any middleware runs; a declared
    Content-Length over SPACES_MAX_REQUEST_BYTES is answered 413 here, before a byte of it is read."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length")
            if body_too_large(length):
                response = too_large_response()
                await send(
                    {
                        "type": "http.response.start",
                        "status": response.status_code,
                        "headers": [
                            (b"content-type", response["Content-Type"].encode()),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": response.content})
                return
        await self.app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": RequestSizeGuard(django_asgi_app),
        # Sessions for every socket; each route says when its user is looked up (routing.py).
        "websocket": SameOriginValidator(SessionMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
