"""spaces_project/prepared.py: a queryset compiled once answers exactly as the queryset does."""

from __future__ import annotations

import pytest
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from accounts import services as accounts
from accounts.models import Follow, User
from rooms import services as rooms
from rooms.models import Space
from spaces_project.prepared import PreparedQuery, PreparedQueryError, answers_kept, ask_together
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


def _follows(user_id):
    return Follow.objects.filter(follower_id=user_id)


_user = PreparedQuery(lambda user_id: User.objects.filter(pk=user_id), "user_id")
_followees = PreparedQuery(
    lambda user_id: _follows(user_id).select_related("followee").order_by("-followee_id"), "user_id"
)
_followee_ids = PreparedQuery(
    lambda user_id: _follows(user_id).order_by("followee_id").values_list("followee_id"), "user_id"
)


def test_queries_asked_together_answer_as_each_alone_in_one_statement(django_assert_num_queries):
    fan = UserFactory(username="fan")
    idols = [UserFactory() for _ in range(4)]
    for idol in idols[1:] + idols[:1]:  # followed out of order: the answers come in the query's order
        accounts.follow_create(follower=fan, followee=idol)
    queries = (_user, _followees, _followee_ids)
    alone = [query.all(user_id=fan.pk) for query in queries]
    with answers_kept():
        with django_assert_num_queries(1):
            assert ask_together(*((query, {"user_id": fan.pk}) for query in queries))
            together = [query.all(user_id=fan.pk) for query in queries]
            assert together[1][0].followee.username == alone[1][0].followee.username  # the related rows too
        # Each answer is taken once: asking again goes to the database.
        with django_assert_num_queries(1):
            assert _user.first(user_id=fan.pk).username == "fan"
    assert [u.pk for u in together[0]] == [u.pk for u in alone[0]] == [fan.pk]
    assert [f.followee_id for f in together[1]] == [f.followee_id for f in alone[1]]
    assert [f.followee_id for f in together[1]] == sorted((i.pk for i in idols), reverse=True)
    assert together[2] == alone[2] == sorted((i.pk,) for i in idols)


def test_a_query_with_no_rows_leaves_the_others_answered(django_assert_num_queries):
    loner = UserFactory()
    with answers_kept():
        with django_assert_num_queries(1):
            assert ask_together((_followees, {"user_id": loner.pk}), (_user, {"user_id": loner.pk}))
            assert _followees.all(user_id=loner.pk) == []
            assert _user.first(user_id=loner.pk).pk == loner.pk
        with django_assert_num_queries(1):
            assert ask_together((_user, {"user_id": loner.pk + 999}), (_followees, {"user_id": loner.pk}))
            assert _user.first(user_id=loner.pk + 999) is None
            assert _followees.all(user_id=loner.pk) == []


def test_answers_are_only_for_the_same_values_and_only_inside_the_block(django_assert_num_queries):
    one, two = UserFactory(), UserFactory()
    assert not ask_together((_user, {"user_id": one.pk}), (_followees, {"user_id": one.pk}))  # no block
    with answers_kept():
        ask_together((_user, {"user_id": one.pk}), (_followees, {"user_id": one.pk}))
        with django_assert_num_queries(1):
            assert _user.first(user_id=two.pk).pk == two.pk  # other values: asked now
    with django_assert_num_queries(1):
        assert _user.first(user_id=one.pk).pk == one.pk  # the block ended: what was kept is gone


def test_a_query_whose_sql_returns_extra_columns_is_not_asked_together():
    # Ordering by an expression it doesn't select makes Django add a column to the SQL.
    extra = PreparedQuery(
        lambda user_id: (
            Follow.objects.filter(follower_id=user_id)
            .order_by("followee__username")
            .values_list("followee_id", flat=True)
            .distinct()
        ),
        "user_id",
    )
    fan = UserFactory()
    with answers_kept():
        assert not ask_together((_user, {"user_id": fan.pk}), (extra, {"user_id": fan.pk}))
        assert extra.all(user_id=fan.pk) == []
