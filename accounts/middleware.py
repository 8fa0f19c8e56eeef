"""The signed-in user, read in the same statement as the page's own query.

Django reads the signed-in user with a query of its own the first time anything asks for
``request.user``. A page that then runs its own query makes two round trips to the database, and
under load a round trip costs the process more than either query's work (docs/benchmarks.md).
A view marked with ``@asks_with_user(ask)`` says which prepared query it will run first; for a
GET with a signed-in session, this middleware asks that query and the user's
(accounts/backends.py) together in one statement, just before the view runs
(spaces_project/prepared.ask_together), and each is answered from those rows when it is called.

Nothing about who is signed in changes: the user's row is only taken by the authentication
backend's ``get_user``, called by Django's ``auth.get_user``, which still checks the session's
backend and password hash and that the account may sign in. If that check fails, the view is
answered as for anyone signed out, and the rows asked for the claimed user are dropped unread.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY
from django.db import DatabaseError
from django.utils.module_loading import import_string

from spaces_project.middleware import unavailable_response
from spaces_project.prepared import PreparedQuery, answers_kept, ask_together

from .backends import PreparedGetUser, user_query

Ask = Callable[..., tuple[PreparedQuery, dict[str, int]]]


def asks_with_user(ask: Ask):
    """Mark a view: ``ask(user_id=..., **the URL's arguments)`` returns (prepared query, values),
    the query the view runs first for that signed-in user."""

    def mark(view):
        view.asks_with_user = ask
        return view

    return mark


@cache
def _prepared_backends(paths: tuple[str, ...]) -> frozenset[str]:
    """Those of the configured backends that read the user with accounts.backends' prepared query."""
    return frozenset(path for path in paths if issubclass(import_string(path), PreparedGetUser))


def claimed_user_id(request) -> int | None:
    """The user id the session names, if one of our backends signed it in (not yet checked)."""
    session = getattr(request, "session", None)
    if session is None:
        return None
    try:
        backend, user_id = session[BACKEND_SESSION_KEY], int(session[SESSION_KEY])
    except (KeyError, TypeError, ValueError):
        return None
    return user_id if backend in _prepared_backends(tuple(settings.AUTHENTICATION_BACKENDS)) else None


class SignedInUserMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with answers_kept():
            return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        ask = getattr(view_func, "asks_with_user", None)
        if ask is None or request.method not in ("GET", "HEAD"):
            return None  # a POST may change what it then reads: nothing is asked ahead
        user_id = claimed_user_id(request)
        if user_id is None:
            return None
        try:
            ask_together(user_query(user_id), ask(user_id=user_id, **view_kwargs))
        except DatabaseError as exc:
            response = unavailable_response(request, exc)
            if response is None:
                raise
            return response
        return None
