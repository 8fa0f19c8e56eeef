from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from ..selectors import unread_count

register = template.Library()


@register.simple_tag(takes_context=True)
def notifications_unread(context) -> SafeString:
    """The bell in the top bar with its unread badge, kept live by static/js/notifications.js.

    Usage in the top bar, for signed-in people: {% load notifications %}{% notifications_unread %}
    """
    user = context.get("user")
    if not getattr(user, "is_authenticated", False):
        return mark_safe("")
    return mark_safe(render_to_string("notifications/_bell.html", {"unread": unread_count(user=user)}))  # noqa: S308
