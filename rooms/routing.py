"""Websocket routes of the rooms app."""

from channels.auth import AuthMiddleware
from django.urls import path

from .captions.consumer import CaptionsConsumer
from .consumers import SpaceConsumer

websocket_urlpatterns: list = [
    # The Space socket looks its user up itself, after the handshake (SpaceConsumer.connect).
    path("ws/spaces/<int:space_id>/", SpaceConsumer.as_asgi()),
    path("ws/spaces/<int:space_id>/captions/", AuthMiddleware(CaptionsConsumer.as_asgi())),
]
