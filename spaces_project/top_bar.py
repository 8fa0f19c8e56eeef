"""The signed-in part of the top bar (bell, avatar, "Sign out"), rendered once per viewer state.

It is on every signed-in page and, but for the sign-out form's CSRF token, depends only on who is
signed in (their name, username and pictures) and how many notifications they have unread. So its
markup is rendered once per such state and process, and each page splices its own freshly masked
token into the form. ~0.14 ms of a page's rendering becomes a dictionary lookup
(docs/benchmarks.md). Used in base.html as ``{% load top_bar %}{% signed_in_nav %}``.
"""

from __future__ import annotations

from collections import OrderedDict

from django import template
from django.template.loader import render_to_string
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from notifications.selectors import unread_for_page

register = template.Library()

# Stands where the CSRF token goes while the markup is rendered for keeping.
_TOKEN_MARK = "\x00csrf-token\x00"
KEPT = 4096  # viewer states per process (~1 KB each)
_kept: OrderedDict[tuple, tuple[str, str]] = OrderedDict()


def _state(user, unread: int) -> tuple:
    # Everything the markup reads of the viewer: the profile link (username), the avatar
    # (pictures, or the initial of the display name or username), the bell's count.
    return (user.pk, user.username, user.display_name, user.avatar_small.name, user.avatar.name, unread)


def _parts(user, unread: int) -> tuple[str, str]:
    """The markup before and after the CSRF token's value, for this viewer state."""
    key = _state(user, unread)
    parts = _kept.get(key)
    if parts is None:
        html = render_to_string("_signed_in_nav.html", {"user": user, "csrf_token": _TOKEN_MARK})
        before, after = html.split(_TOKEN_MARK)
        parts = _kept[key] = (before, after)
        while len(_kept) > KEPT:
            try:
                _kept.popitem(last=False)
            except KeyError:  # another thread emptied it first
                break
    return parts


@register.simple_tag(takes_context=True)
def signed_in_nav(context) -> SafeString:
    user = context.get("user")
    if not getattr(user, "is_authenticated", False):
        return mark_safe("")
    token = context.get("csrf_token")
    if not token or str(token) == "NOTPROVIDED":
        # No request behind this render: no token to splice, so render it as it is.
        return mark_safe(render_to_string("_signed_in_nav.html", {"user": user, "csrf_token": token}))  # noqa: S308
    before, after = _parts(user, unread_for_page(user=user))
    return mark_safe(before + conditional_escape(str(token)) + after)  # noqa: S308 - our own rendered HTML
