"""Project-wide middleware: the viewer's time zone, and a clear 503 when the database is away."""

from __future__ import annotations

import logging
import zoneinfo

from django.db import DatabaseError, InterfaceError, OperationalError
from django.shortcuts import render
from django.utils import timezone

log = logging.getLogger(__name__)


class UserTimezoneMiddleware:
    """Render times in the signed-in viewer's own zone (stored in UTC)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        try:
            tz_name = getattr(user, "time_zone", "") or "UTC"
        except DatabaseError as exc:  # loading the user
            response = unavailable_response(request, exc)
            if response is None:
                raise
            return response
        try:
            timezone.activate(zoneinfo.ZoneInfo(tz_name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        return None


def unavailable_response(request, exception: Exception):
    """The 503 page when `exception` says the database can't be reached; otherwise None."""
    if isinstance(exception, (OperationalError, InterfaceError)) or (
        isinstance(exception, DatabaseError) and "connect" in str(exception).lower()
    ):
        log.warning("database unavailable: %s", exception)
        response = render(request, "503.html", status=503)
        response["Retry-After"] = "5"
        return response
    return None


class DatabaseUnavailableMiddleware:
    """A database that cannot be reached gives people a 503 page, not a stack trace.

    Only connection-level failures count; a programming error still surfaces.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return unavailable_response(request, exception)
