"""Websocket routes of every app, gathered in one list."""

from channels.auth import AuthMiddleware
from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from notifications.routing import websocket_urlpatterns as notifications_ws
from rooms.routing import websocket_urlpatterns as rooms_ws

from .consumers import HomeConsumer

websocket_urlpatterns = [
    *rooms_ws,
    *notifications_ws,
    path("ws/home/", AuthMiddleware(HomeConsumer.as_asgi())),
    # Any other path: refused at the handshake (403), not an error in the router (HTTP 500).
    re_path(r"", WebsocketDenier.as_asgi()),
]
