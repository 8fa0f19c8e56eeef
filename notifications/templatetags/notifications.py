from django import template

from ..selectors import unread_count

register = template.Library()


@register.inclusion_tag("notifications/_bell.html", takes_context=True)
def notifications_unread(context) -> dict:
    """The bell in the top bar with its unread badge, kept live by static/js/notifications.js.

    Usage in the top bar, for signed-in people: {% load notifications %}{% notifications_unread %}
    """
    return {"unread": unread_count(user=context.get("user"))}
