from functools import lru_cache

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from ..selectors import unread_for_page

register = template.Library()


@register.simple_tag(takes_context=True)
def notifications_unread(context) -> SafeString:
    """The bell in the top bar with its unread badge, kept live by static/js/notifications.js.

    Usage in base.html, for signed-in people: {% load notifications %}{% notifications_unread %}
    """
    user = context.get("user")
    if not getattr(user, "is_authenticated", False):
        return mark_safe("")
    return _bell(unread_for_page(user=user))


@lru_cache(maxsize=256)
def _bell(unread: int) -> SafeString:
    # On every signed-in page; its markup depends on the count alone, so each count is rendered
    # once per process.
    return mark_safe(render_to_string("notifications/_bell.html", {"unread": unread}))  # noqa: S308
