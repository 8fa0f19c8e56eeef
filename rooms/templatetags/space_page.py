"""The Space page's markup that never changes, rendered once per process.

{% icon "name" %}: an SVG from templates/icons/ (the control bar carries nine; as includes they
were nine template lookups and renders on every view). {% reaction_buttons %}: the reaction
picker's buttons, one per emoji in rooms.protocol.REACTIONS.
"""

from __future__ import annotations

from functools import cache

from django import template
from django.template.loader import render_to_string
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

from ..protocol import REACTIONS

register = template.Library()


@cache
def _svg(name: str) -> SafeString:
    return mark_safe(render_to_string(f"icons/{name}.html"))  # noqa: S308 - our own template files


@register.simple_tag
def icon(name: str) -> SafeString:
    return _svg(name)


@register.simple_tag
def reaction_buttons() -> SafeString:
    return _reaction_buttons()


@cache
def _reaction_buttons() -> SafeString:
    return format_html_join(
        "",
        '<button type="button" class="emoji" data-emoji="{}" aria-label="React {}">{}</button>',
        ((emoji, emoji, emoji) for emoji in REACTIONS),
    )
