"""{% icon "name" %}: an SVG from templates/icons/, rendered once per process.

The Space page's control bar carries nine icons; as includes they were nine template lookups and
renders on every page view for markup that never changes.
"""

from __future__ import annotations

from functools import cache

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@cache
def _svg(name: str) -> SafeString:
    return mark_safe(render_to_string(f"icons/{name}.html"))  # noqa: S308 - our own template files


@register.simple_tag
def icon(name: str) -> SafeString:
    return _svg(name)
