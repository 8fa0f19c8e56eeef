"""The authentication backends, with the signed-in user read by a query compiled once.

Every signed-in request reads its user (``get_user``). Django builds that query afresh each time;
here it is compiled once per process (spaces_project/prepared.py), and it brings the unread
notifications count the top bar shows (``unread_notifications``). Otherwise it behaves exactly like
Django's and allauth's backends: an inactive account gets no user.
"""

from __future__ import annotations

from allauth.account.auth_backends import AuthenticationBackend as AllauthBackend
from django.contrib.auth import backends

from spaces_project.prepared import PreparedQuery

from .models import User


def _signed_in(user_id: int):
    from notifications.selectors import unread_expression  # notifications builds on accounts

    # The bell on every page shows the unread count; it comes with the user, not as a second query.
    return User._default_manager.filter(pk=user_id).annotate(unread_notifications=unread_expression())


_user_by_id = PreparedQuery(_signed_in, "user_id")


def user_query(user_id: int) -> tuple[PreparedQuery, dict[str, int]]:
    """What ``get_user(user_id)`` asks, for asking it together with a page's query
    (accounts/middleware.py)."""
    return _user_by_id, {"user_id": user_id}


class PreparedGetUser:
    """``get_user`` by the prepared query (which accounts/middleware.py can ask ahead)."""

    def get_user(self, user_id):
        user = _user_by_id.first(user_id=int(user_id))
        return user if user is not None and self.user_can_authenticate(user) else None


class ModelBackend(PreparedGetUser, backends.ModelBackend):
    """Username (or email) and password, as Django's."""


class AuthenticationBackend(PreparedGetUser, AllauthBackend):
    """allauth's log-in by username or email."""
