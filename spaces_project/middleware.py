"""Project-wide middleware: the viewer's time zone, and a clear 503 when the database is away."""

from __future__ import annotations

import logging
import zoneinfo

from django.db import DatabaseError, InterfaceError, OperationalError
from django.shortcuts import render
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

log = logging.getLogger(__name__)


class UserTimezoneMiddleware:
    """Render times in the signed-in viewer's own zone (stored in UTC).

    The zone is set just before the view runs (``process_view``), not earlier: until then nothing
    has read the user, so a page's own query can bring the user with it
    (accounts/middleware.SignedInUserMiddleware, which comes before this one).

    Reading the zone loads the user, so from here on the request carries the user itself rather
    than Django's lazy stand-in, whose every attribute read (dozens per page) goes through a proxy.
    """

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
        if isinstance(user, SimpleLazyObject):
            request.user = user._wrapped  # loaded by the line above
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
