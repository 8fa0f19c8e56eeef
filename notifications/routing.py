from channels.auth import AuthMiddleware
from django.urls import path

from .consumers import NotificationConsumer

websocket_urlpatterns = [path("ws/notifications/", AuthMiddleware(NotificationConsumer.as_asgi()))]
