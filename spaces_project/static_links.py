"""``{% load static_links %}``: Django's ``static`` library with each file's URL worked out once per process.

Django's ``{% static %}`` asks the storage every time: with the manifest storage (production) that
is a manifest lookup, a URL split and join and quoting, ~8-10 µs; a page has six or more. The
storage itself is built once per process from the settings and never changes while it lives, so
the answer for a path can be kept: this library is Django's ``static`` library with the
``static`` tag answering from a memo (``libraries`` in settings.TEMPLATES). The project's
templates load it instead of Django's (``{% load static_links %}{% static 'css/app.css' %}``);
it can't take the name ``static`` itself, which Django's system checks flag as a clash.
The memo is cleared when a test changes the settings Django rebuilds the storage for.
"""

from __future__ import annotations

from functools import lru_cache

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.templatetags import static as django_static
from django.utils.safestring import SafeString

register = template.Library()
register.tags.update(django_static.register.tags)  # get_static_prefix, get_media_prefix, static
register.filters.update(django_static.register.filters)


@lru_cache(maxsize=4096)
def static_url(path: str) -> str:
    return django_static.StaticNode.handle_simple(path)


@receiver(setting_changed)
def _forget_on_new_storage(*, setting, **kwargs) -> None:
    # The settings django.test.signals rebuilds the static files storage for.
    if setting in ("STORAGES", "STATIC_ROOT", "STATIC_URL"):
        static_url.cache_clear()


class RememberedStaticNode(django_static.StaticNode):
    def url(self, context):
        path = self.path.resolve(context)
        # Exactly plain strings (a template literal is a SafeString); anything else asks the storage.
        return static_url(path) if type(path) in (str, SafeString) else self.handle_simple(path)


@register.tag("static")
def do_static(parser, token):
    """``{% static path [as var] %}`` parsed as Django parses it, answered from the memo."""
    return RememberedStaticNode.handle_token(parser, token)
