from django import template

from ..selectors import unread_for_page

register = template.Library()


@register.inclusion_tag("notifications/_bell.html", takes_context=True)
def notifications_unread(context):
    """The bell in the top bar with its unread badge, kept live by static/js/notifications.js.

    Usage in base.html, for signed-in people: {% load notifications %}{% notifications_unread %}
    """
    user = context.get("user")
    return {"unread": unread_for_page(user=user), "user": user}
