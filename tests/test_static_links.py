"""spaces_project/static_links.py: `{% static %}` answers as Django's and follows setting changes."""

from __future__ import annotations

from django.template import engines
from django.templatetags.static import StaticNode

from spaces_project.static_links import RememberedStaticNode


def render(source: str, **context) -> str:
    return engines["django"].from_string(source).render(context)


def test_the_library_remembers_and_keeps_djangos_other_tags():
    template = engines["django"].from_string("{% load static_links %}{% static 'css/app.css' %}")
    assert isinstance(template.template.nodelist[-1], RememberedStaticNode)
    assert render("{% load static_links %}{% get_static_prefix %}") == "/static/"


def test_same_answers_as_django_literal_variable_and_as_var():
    expected = StaticNode.handle_simple("css/app.css")
    assert render("{% load static_links %}{% static 'css/app.css' %}") == expected
    assert render("{% load static_links %}{% static path %}", path="css/app.css") == expected
    assert render("{% load static_links %}{% static 'css/app.css' as u %}[{{ u }}]") == f"[{expected}]"
    # Escaped as Django escapes it.
    escaped = StaticNode.handle_simple("a&b.css").replace("&", "&amp;")
    assert render("{% load static_links %}{% static 'a&b.css' %}") == escaped


def test_a_new_static_url_is_followed(settings):
    before = render("{% load static_links %}{% static 'img/logo.svg' %}")
    assert before.startswith("/static/")
    settings.STATIC_URL = "/assets/"
    assert render("{% load static_links %}{% static 'img/logo.svg' %}").startswith("/assets/")


def test_the_projects_templates_load_this_library():
    from pathlib import Path

    from django.conf import settings

    templates = list(Path(settings.BASE_DIR, "templates").glob("**/*.html"))
    assert len(templates) > 50
    assert [path for path in templates if "{% load static %}" in path.read_text()] == []
