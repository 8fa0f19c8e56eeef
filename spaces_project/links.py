"""URLs by view name, worked out once per process and kept.

Django's ``reverse`` walks the URL resolver each time (~25-35 µs); every page links to the same
few views (home, the viewer's profile, sign out, the Space, its feedback form), seven or more
times per render. ``reverse`` here answers from a memo keyed on everything the answer depends
on: the name, its arguments, the current app, the thread's URLconf and script prefix. Only
plain values (str, int) are kept; anything else — a model instance, whose ``str()`` can change,
or a lazy string — goes to Django's ``reverse`` every time. The project's URLs don't depend on
the language (no ``i18n_patterns``), so the language is not part of the key.

The ``url`` template tag is replaced by one that uses it (``builtins`` in settings.TEMPLATES),
so templates keep writing ``{% url 'home' %}``.
"""

from __future__ import annotations

from functools import lru_cache

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template.defaulttags import URLNode
from django.template.defaulttags import url as django_url_tag
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf
from django.urls import reverse as django_reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString

# Exactly these types: a str subclass may print differently, and True would share 1's key.
# Templates hand over their string literals as SafeString.
_PLAIN = (str, SafeString, int)


@lru_cache(maxsize=8192)
def _reverse(viewname, args, kwargs, current_app, urlconf, prefix) -> str:
    # `prefix` is only part of the key: Django's reverse reads the same script prefix itself.
    return django_reverse(viewname, urlconf=urlconf, args=args, kwargs=dict(kwargs), current_app=current_app)


def reverse(viewname, args=None, kwargs=None, current_app=None) -> str:
    """Django's ``reverse`` (without ``urlconf``), remembered for plain arguments."""
    args, kwargs = tuple(args or ()), kwargs or {}
    if type(viewname) in _PLAIN and all(type(v) in _PLAIN for v in (*args, *kwargs.values())):
        key_kwargs = tuple(sorted(kwargs.items()))
        return _reverse(viewname, args, key_kwargs, current_app, get_urlconf(), get_script_prefix())
    return django_reverse(viewname, args=args, kwargs=kwargs, current_app=current_app)


@receiver(setting_changed)
def _forget_on_new_urlconf(*, setting, **kwargs) -> None:
    # Tests that swap ROOT_URLCONF: Django clears its own resolver caches on the same signal.
    if setting == "ROOT_URLCONF":
        _reverse.cache_clear()


register = template.Library()


class RememberedURLNode(URLNode):
    """Django's ``{% url %}`` node, reversing through the memo above."""

    def render(self, context):
        args = [arg.resolve(context) for arg in self.args]
        kwargs = {k: v.resolve(context) for k, v in self.kwargs.items()}
        view_name = self.view_name.resolve(context)
        try:
            current_app = context.request.current_app
        except AttributeError:
            try:
                current_app = context.request.resolver_match.namespace
            except AttributeError:
                current_app = None
        url = ""
        try:
            url = reverse(view_name, args=args, kwargs=kwargs, current_app=current_app)
        except NoReverseMatch:
            if self.asvar is None:
                raise
        if self.asvar:
            context[self.asvar] = url
            return ""
        return conditional_escape(url) if context.autoescape else url


@register.tag
def url(parser, token):
    """``{% url %}`` exactly as Django parses it, rendered by `RememberedURLNode`."""
    node = django_url_tag(parser, token)
    return RememberedURLNode(node.view_name, node.args, node.kwargs, node.asvar)
