"""spaces_project/prepared.py: a queryset compiled once answers exactly as the queryset does."""

from __future__ import annotations

import pytest
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from accounts import services as accounts
from accounts.models import Follow, User
from rooms import services as rooms
from rooms.models import Space
from spaces_project.prepared import PreparedQuery, PreparedQueryError
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_instances_related_objects_and_annotations_match_the_queryset(django_assert_num_queries):
    host = UserFactory(username="host", hosting_granted=True)
    fans = [UserFactory(username=f"fan{i}") for i in range(3)]
    for fan in fans[:2]:
        accounts.follow_create(follower=fan, followee=host)
    space = rooms.space_create(host=host, title="Prepared")

    def build(space_id, user_id):
        follows = Follow.objects.filter(follower_id=user_id, followee=OuterRef("host_id"))
        return (
            Space.objects.select_related("host")
            .filter(pk=space_id)
            .annotate(host_fans=F("host__follower_count"), viewer_follows=Exists(follows))
        )

    prepared = PreparedQuery(build, "space_id", "user_id")
    for fan in fans:
        expected = list(build(space.pk, fan.pk))
        with django_assert_num_queries(1):
            got = prepared.all(space_id=space.pk, user_id=fan.pk)
        assert [(s.pk, s.title, s.host_fans, s.viewer_follows) for s in got] == [
            (s.pk, s.title, s.host_fans, s.viewer_follows) for s in expected
        ]
        if got:
            with django_assert_num_queries(0):  # the host came with the Space
                assert got[0].host.username == "host"
            assert got[0].started_at == expected[0].started_at  # converted like the ORM's
    answers = [prepared.first(space_id=space.pk, user_id=fan.pk) for fan in fans]
    assert [(s.host_fans, s.viewer_follows) for s in answers] == [(2, True), (2, True), (2, False)]
    assert prepared.first(space_id=space.pk + 1000, user_id=fans[0].pk) is None


def test_values_list_rows_flat_and_not():
    fan, idol = UserFactory(), UserFactory()
    accounts.follow_create(follower=fan, followee=idol)
    flat = PreparedQuery(
        lambda user_id: Follow.objects.filter(follower_id=user_id).values_list("followee_id", flat=True),
        "user_id",
    )
    rows = PreparedQuery(
        lambda user_id: Follow.objects.filter(follower_id=user_id).values_list("followee_id", "follower_id"),
        "user_id",
    )
    assert flat.all(user_id=fan.pk) == [idol.pk]
    assert rows.all(user_id=fan.pk) == [(idol.pk, fan.pk)]
    assert flat.all(user_id=idol.pk) == []


def test_a_shape_that_depends_on_its_values_is_refused():
    # SQL that changes with the value (here: which lookup) can't be compiled once.
    shifting = PreparedQuery(
        lambda user_id: (
            User.objects.filter(pk=user_id) if user_id < -(2**51) else User.objects.filter(pk__gte=user_id)
        ),
        "user_id",
    )
    with pytest.raises(PreparedQueryError):
        shifting.all(user_id=1)
    # A value that is no argument but changes between compiles (the clock) is refused too.
    clocked = PreparedQuery(
        lambda user_id: User.objects.filter(pk=user_id, date_joined__lte=timezone.now()), "user_id"
    )
    with pytest.raises(PreparedQueryError):
        clocked.all(user_id=1)


def test_arguments_are_named_integers():
    prepared = PreparedQuery(lambda user_id: User.objects.filter(pk=user_id), "user_id")
    with pytest.raises(TypeError):
        prepared.all(user_id="1")
    with pytest.raises(TypeError):
        prepared.all(other=1)
