"""{% avatar person "sm" %}: someone's round picture, or their initials when they have none.

A tag rather than an included template: it is on every signed-in page (the top bar) and several
times on the busiest ones, and an include costs a template lookup and a context push each time.

Sizes: xs, sm, md (default), xl; `ring="live"` adds the purple live ring.
"""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag
def avatar(person, size: str = "md", ring: str = "") -> SafeString:
    ring_class = f" ring-{ring}" if ring else ""
    if person.avatar_small and size in ("sm", "xs"):
        inner = format_html('<img src="{}" alt="" loading="lazy">', person.avatar_small.url)
    elif person.avatar:
        inner = format_html('<img src="{}" alt="" loading="lazy">', person.avatar.url)
    else:
        inner = format_html('<span class="avatar-initial" aria-hidden="true">{}</span>', person.initials)
    # The trailing newline is the one the included template had: inline, it spaces a name off.
    return format_html('<span class="avatar avatar-{}{}">{}</span>\n', size or "md", ring_class, inner)
