"""URLs by view name from the per-process memo (spaces_project/links.py): the same answers as
Django's reverse, whatever the prefix, URLconf or argument types."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.urls import NoReverseMatch, clear_script_prefix, path, set_script_prefix
from django.urls import reverse as django_reverse
from django.utils.safestring import mark_safe

from spaces_project import links


def _nothing(request):  # a view for the swapped URLconf below
    raise AssertionError("not called")


urlpatterns = [path("elsewhere/", _nothing, name="home"), path("n/<int:n>/", _nothing, name="number")]


@pytest.fixture(autouse=True)
def fresh_memo():
    links._reverse.cache_clear()
    yield
    links._reverse.cache_clear()


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("home", None, None),
        ("rooms:space", None, {"space_id": 7}),
        ("profile", None, {"username": "ada"}),
        ("moderation:feedback", [12], None),
    ],
)
def test_answers_as_django_does_and_remembers(name, args, kwargs):
    expected = django_reverse(name, args=args, kwargs=kwargs)
    assert links.reverse(name, args=args, kwargs=kwargs) == expected
    assert links.reverse(name, args=args, kwargs=kwargs) == expected
    info = links._reverse.cache_info()
    assert (info.hits, info.misses) == (1, 1)


def test_template_literals_are_remembered_like_plain_strings():
    links.reverse(mark_safe("home"))
    links.reverse("home")
    assert links._reverse.cache_info().hits == 1


def test_values_that_print_differently_are_not_remembered():
    class Named:
        def __init__(self, text):
            self.text = text

        def __str__(self):
            return self.text

        def __hash__(self):
            return 1

        def __eq__(self, other):
            return isinstance(other, Named)

    first, second = Named("ada"), Named("bob")
    assert links.reverse("profile", kwargs={"username": first}) == "/u/ada/"
    assert links.reverse("profile", kwargs={"username": second}) == "/u/bob/"
    # True equals 1 and hashes like it, but Django prints it "True".
    with pytest.raises(NoReverseMatch):
        links.reverse("moderation:feedback", args=[True])
    assert links.reverse("moderation:feedback", args=[1]) == "/spaces/1/feedback/"
    assert links._reverse.cache_info().currsize == 1


def test_the_script_prefix_is_part_of_the_answer():
    assert links.reverse("home") == "/"
    set_script_prefix("/spaces-app/")
    try:
        assert links.reverse("home") == "/spaces-app/"
    finally:
        clear_script_prefix()
    assert links.reverse("home") == "/"


def test_a_new_urlconf_forgets_what_was_remembered():
    assert links.reverse("home") == "/"
    with override_settings(ROOT_URLCONF=__name__):
        assert links.reverse("home") == "/elsewhere/"
        assert links.reverse("number", args=[3]) == "/n/3/"
    assert links.reverse("home") == "/"


def test_the_url_tag_renders_through_it_as_djangos_does():
    template = Template(
        "{% url 'home' %}|{% url 'rooms:space' space_id=n %}|{% url 'nowhere' as missing %}[{{ missing }}]"
        "|{% url 'profile' username=name %}"
    )
    assert template.render(Context({"n": 5, "name": "a&b"})) == "/|/spaces/5/|[]|/u/a&amp;b/"
    assert links._reverse.cache_info().currsize == 3  # a name that does not reverse is not kept
    with pytest.raises(NoReverseMatch):
        Template("{% url 'nowhere' %}").render(Context())
