"""Project-wide middleware: the viewer's time zone, and a clear 503 when the database is away."""

from __future__ import annotations

import logging
import zoneinfo

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

log = logging.getLogger(__name__)


def body_too_large(content_length: str | bytes | None) -> bool:
    """True when a declared Content-Length is over SPACES_MAX_REQUEST_BYTES."""
    try:
        return int(content_length or 0) > settings.SPACES_MAX_REQUEST_BYTES
    except ValueError:
        return False  # Django itself refuses a malformed length


def too_large_response() -> HttpResponse:
    mb = settings.SPACES_MAX_REQUEST_BYTES // (1024 * 1024)
    return HttpResponse(
        f"That upload is too large: requests are limited to {mb} MB. Choose a smaller file.",
        status=413,
        content_type="text/plain; charset=utf-8",
    )


class RequestSizeLimitMiddleware:
    """A body over SPACES_MAX_REQUEST_BYTES gets 413 before any view, form or CSRF check reads it.

    Under gunicorn nothing has been read yet; under daphne the ASGI guard in asgi.py answered first.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if body_too_large(request.META.get("CONTENT_LENGTH")):
            return too_large_response()
        return self.get_response(request)


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


# SQLSTATE classes and codes of a connection the server refused or dropped.
_CONNECTION_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def connection_lost(exception: Exception) -> bool:
    """True when `exception` says the database can't be reached, not that a query failed.

    Django raises its own OperationalError with the driver's error as the cause. psycopg gives a
    server's errors a SQLSTATE (a deadlock is 40P01: a real error); a connection that failed or
    broke has none, or a class-08 / shutdown one. SQLite's only such case is a file it can't open.
    """
    if isinstance(exception, InterfaceError):
        return True
    if not isinstance(exception, OperationalError):
        return False
    cause = exception.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate:
        return sqlstate.startswith(_CONNECTION_SQLSTATES)
    driver = type(cause).__module__.split(".")[0]
    if driver in ("psycopg", "psycopg_pool"):  # psycopg_pool: no connection came free in time
        return True
    return driver == "sqlite3" and "unable to open" in str(cause)


def unavailable_response(request, exception: Exception):
    """The 503 page when `exception` says the database can't be reached; otherwise None (Django
    answers 500 and logs the error)."""
    if connection_lost(exception):
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
