"""Websocket routes of the rooms app."""

from django.urls import path

from .captions.consumer import CaptionsConsumer
from .consumers import SpaceConsumer

websocket_urlpatterns: list = [
    path("ws/spaces/<int:space_id>/", SpaceConsumer.as_asgi()),
    path("ws/spaces/<int:space_id>/captions/", CaptionsConsumer.as_asgi()),
]
