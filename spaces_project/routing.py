"""Websocket routes of every app, gathered in one list."""

from rooms.routing import websocket_urlpatterns as rooms_ws

websocket_urlpatterns = [*rooms_ws]
