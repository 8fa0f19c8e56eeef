"""Websocket routes of every app, gathered in one list."""

from notifications.routing import websocket_urlpatterns as notifications_ws
from rooms.routing import websocket_urlpatterns as rooms_ws

websocket_urlpatterns = [*rooms_ws, *notifications_ws]
