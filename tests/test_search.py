"""Search (/search) and "Who to follow" on home.

On PostgreSQL, people and Spaces are found by prefix and through one typo (pg_trgm, with GIN
indexes); on the embedded SQLite default, by substring. Query counts do not grow with the data."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.models import TextField
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils import timezone

from accounts import services as accounts
from accounts.models import User
from accounts.rules import SEARCH_QUERY_MAX_CHARS, SEARCH_RESULTS, WHO_TO_FOLLOW_SHOWN
from accounts.selectors import who_to_follow
from rooms import services
from rooms.models import Space
from tests.factories import UserFactory, make_users
from tests.strict import require

pytestmark = pytest.mark.django_db


def found(client, q: str) -> tuple[list[str], list[str]]:
    """The handles and Space titles the search page lists for `q`."""
    response = client.get(reverse("search"), {"q": q})
    assert response.status_code == 200
    people = [p.username for p in response.context["people"]]
    spaces = [s.title for s in response.context["spaces"]]
    return people, spaces


@pytest.fixture
def world():
    alice = UserFactory(username="alice_w", display_name="Alice Walker")
    marco = UserFactory(username="mtorres", display_name="Marco Torres", hosting_granted=True)
    UserFactory(username="bob", display_name="Bob Stone")
    live = services.space_create(host=marco, title="Jazz standards tonight", topics=["music", "improv"])
    scheduled = Space.objects.create(
        host=alice,
        title="Founders' breakfast",
        topics=["startups"],
        state=Space.State.SCHEDULED,
        scheduled_for=timezone.now() + dt.timedelta(days=2),
    )
    ended = Space.objects.create(host=alice, title="Jazz history (ended)", state=Space.State.ENDED)
    return {"alice": alice, "marco": marco, "live": live, "scheduled": scheduled, "ended": ended}


def test_people_are_found_by_handle_and_name_prefix(client, world):
    assert found(client, "ali")[0] == ["alice_w"]
    assert found(client, "Marco")[0] == ["mtorres"]
    assert found(client, "tor")[0] == ["mtorres"]  # a name's later word


def test_spaces_are_found_by_title_and_topic_live_and_upcoming_only(client, world):
    people, spaces = found(client, "jazz")
    assert spaces == ["Jazz standards tonight"]  # the ended one is not offered
    assert found(client, "startups")[1] == ["Founders' breakfast"]
    assert found(client, "improv")[1] == ["Jazz standards tonight"]


def test_an_upcoming_space_long_past_its_time_is_not_offered(client, world):
    Space.objects.filter(pk=world["scheduled"].pk).update(scheduled_for=timezone.now() - dt.timedelta(days=1))
    assert found(client, "breakfast")[1] == []


def test_suspended_and_inactive_people_are_not_found(client, world):
    User.objects.filter(pk=world["alice"].pk).update(is_suspended=True)
    UserFactory(username="alicia", is_active=False)
    assert found(client, "ali")[0] == []


def test_the_page_links_each_result(client, world):
    html = client.get(reverse("search"), {"q": "alice"}).content.decode()
    assert world["alice"].get_absolute_url() in html
    html = client.get(reverse("search"), {"q": "jazz"}).content.decode()
    assert world["live"].get_absolute_url() in html
    html = client.get(reverse("search"), {"q": "breakfast"}).content.decode()
    assert reverse("rooms:scheduled_space", args=[world["scheduled"].pk]) in html


def test_a_one_or_two_letter_search_matches_handle_and_title_starts_only(client, world):
    assert found(client, "al") == (["alice_w"], [])
    assert found(client, "ce") == ([], [])  # inside "alice_w", but not its start
    assert found(client, "Fo") == ([], ["Founders' breakfast"])
    assert found(client, "J")[1] == ["Jazz standards tonight"]


def test_an_empty_search_shows_the_box_and_runs_no_query(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get(reverse("search"), {"q": "   "})
    assert response.status_code == 200
    assert 'name="q"' in response.content.decode()


def test_an_overlong_search_is_refused_with_words(client, world):
    response = client.get(reverse("search"), {"q": "a" * (SEARCH_QUERY_MAX_CHARS + 1)})
    assert response.status_code == 400
    assert f"at most {SEARCH_QUERY_MAX_CHARS} characters" in response.content.decode()
    assert response.context["people"] == []


def test_control_characters_in_a_search_are_dropped(client, world):
    assert found(client, "al\x00ice") == (["alice_w"], [])
    assert found(client, "\x00\x01") == ([], [])


def test_like_wildcards_in_a_search_are_plain_characters(client, world):
    assert found(client, "%%%") == ([], [])
    assert found(client, "e_w")[0] == ["alice_w"]


def test_the_top_bar_has_the_search_box(client, world):
    html = client.get(reverse("home")).content.decode()
    assert f'action="{reverse("search")}"' in html and 'role="search"' in html


def test_search_query_count_does_not_grow_with_results(client, django_assert_max_num_queries):
    host = UserFactory(username="hosty", hosting_granted=True)
    for i in range(3):
        Space.objects.create(host=host, title=f"Kitchen talk {i}", state=Space.State.LIVE)
    make_users(5, prefix="kitchen")
    # The threshold, then people and Spaces in one or two queries each (and, inside a test's
    # transaction, a savepoint and its release).
    with django_assert_max_num_queries(7) as few:
        client.get(reverse("search"), {"q": "kitchen"})
    hosts = make_users(40, prefix="kitchenhost")
    Space.objects.bulk_create(
        [Space(host=h, title=f"Kitchen talk by {h.username}", state=Space.State.LIVE) for h in hosts]
    )
    with django_assert_max_num_queries(len(few)):
        response = client.get(reverse("search"), {"q": "kitchen"})
    assert len(response.context["people"]) == len(response.context["spaces"]) == SEARCH_RESULTS


# --- PostgreSQL: trigram similarity -----------------------------------------------------


@pytest.mark.postgres
def test_one_typo_finds_people_on_postgres(client, world):
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    assert found(client, "alise")[0][0] == "alice_w"  # one wrong letter
    assert found(client, "mtores")[0][0] == "mtorres"  # one missing letter
    assert found(client, "Marko Torres")[0][0] == "mtorres"
    assert found(client, "Walkre")[0][0] == "alice_w"  # two letters swapped


@pytest.mark.postgres
def test_one_typo_finds_spaces_by_title_and_topic_on_postgres(client, world):
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    assert found(client, "standarts")[1] == ["Jazz standards tonight"]
    assert found(client, "startup")[1] == ["Founders' breakfast"]
    assert found(client, "brekfast")[1] == ["Founders' breakfast"]


@pytest.mark.postgres
def test_exact_matches_rank_before_typo_matches_on_postgres(client, world):
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    UserFactory(username="marko_p", display_name="Marko Petrov", follower_count=900)
    UserFactory(username="marcopolo", display_name="Polo", follower_count=5)
    # Handle prefix first, then other exact matches, then the typo match however popular.
    assert found(client, "marco")[0] == ["marcopolo", "mtorres", "marko_p"]


@pytest.mark.postgres
def test_search_uses_the_trigram_indexes_on_postgres(world):
    """With sequential scans priced out, the plan reads the GIN indexes: the filter is one they serve."""
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    from django.contrib.postgres.lookups import TrigramWordSimilar
    from django.db import transaction
    from django.db.models import Q
    from django.db.models.lookups import Contains

    from accounts.selectors import SearchText, people_search_text

    def match(text, needle):
        return Q(Contains(text, needle)) | Q(TrigramWordSimilar(text, needle))

    people = match(people_search_text(), "ALISE")
    spaces = match(SearchText("title", Cast("topics", TextField())), "JAZ")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        people_plan = User.objects.filter(people).explain()
    # The Spaces index is partial (live and upcoming Spaces). On a table this small the planner
    # rightly prefers the state index, so that one (and scheduled_for's) are dropped inside this
    # test's transaction: what the plan then shows is that the search's own state filter implies
    # the partial index's predicate, and its text expression is the indexed one.
    open_spaces = Q(state=Space.State.LIVE) | Q(
        state=Space.State.SCHEDULED, scheduled_for__gte=timezone.now()
    )
    with transaction.atomic(), connection.cursor() as cursor:
        for index in connection.introspection.get_constraints(cursor, Space._meta.db_table).items():
            name, info = index
            if info["index"] and not info["primary_key"] and name != "space_search_trgm":
                cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SET LOCAL enable_seqscan = off")
        spaces_plan = Space.objects.filter(spaces, open_spaces).explain()
        transaction.set_rollback(True)
    assert "user_search_trgm" in people_plan and "Seq Scan" not in people_plan
    assert "space_search_trgm" in spaces_plan and "Seq Scan" not in spaces_plan


def test_substrings_match_on_every_database_typos_only_on_postgres(client, world):
    """The embedded SQLite default matches substrings only (README): there a typo finds nobody."""
    assert found(client, "lice")[0] == ["alice_w"]
    assert found(client, "alise")[0] == ([] if connection.vendor == "sqlite" else ["alice_w"])


# --- who to follow ---------------------------------------------------------------


@pytest.fixture
def circle():
    """me follows f1 and f2; f1 follows x and y, f2 follows x and me; popular accounts exist."""
    me, f1, f2, x, y = (UserFactory(username=n) for n in ("me", "f1", "f2", "x", "y"))
    for a, b in [(me, f1), (me, f2), (f1, x), (f1, y), (f2, x), (f2, me)]:
        accounts.follow_create(follower=a, followee=b)
    stars = [UserFactory(username=f"star{i}") for i in range(3)]
    fans = make_users(6, prefix="fan")
    for i, star in enumerate(stars):
        for fan in fans[: (6, 5, 3)[i]]:  # more followers than x (2) or y (1)
            accounts.follow_create(follower=fan, followee=star)
    return {"me": me, "f1": f1, "f2": f2, "x": x, "y": y, "stars": stars}


def names(users) -> list[str]:
    return [u.username for u in users]


def test_who_to_follow_puts_friends_of_friends_first_then_most_followed(circle):
    suggested = names(who_to_follow(viewer=circle["me"], limit=WHO_TO_FOLLOW_SHOWN))
    assert suggested == ["x", "y", "star0", "star1", "star2"]  # x is followed by two I follow


def test_who_to_follow_never_offers_myself_or_people_i_follow(circle):
    suggested = names(who_to_follow(viewer=circle["me"], limit=50))
    assert "me" not in suggested and "f1" not in suggested and "f2" not in suggested
    accounts.follow_create(follower=circle["me"], followee=circle["x"])
    assert "x" not in names(who_to_follow(viewer=circle["me"], limit=50))


def test_who_to_follow_for_a_newcomer_is_the_most_followed(circle):
    newcomer = UserFactory(username="newbie")
    assert names(who_to_follow(viewer=newcomer, limit=3)) == ["star0", "star1", "star2"]


def test_who_to_follow_skips_suspended_accounts(circle):
    User.objects.filter(pk=circle["x"].pk).update(is_suspended=True)
    assert "x" not in names(who_to_follow(viewer=circle["me"], limit=50))


def test_who_to_follow_takes_two_queries_however_big_the_circle(circle, django_assert_num_queries):
    with django_assert_num_queries(2):
        who_to_follow(viewer=circle["me"])
    crowd = make_users(30, prefix="crowd")
    for person in crowd:
        accounts.follow_create(follower=circle["f1"], followee=person)
        accounts.follow_create(follower=circle["me"], followee=person)
    with django_assert_num_queries(2):
        who_to_follow(viewer=circle["me"])


def test_home_shows_who_to_follow_with_follow_buttons(client, circle):
    client.force_login(circle["me"])
    html = client.get(reverse("home")).content.decode()
    section = html.split('data-testid="who-to-follow"')[1].split("</section>")[0]
    assert circle["x"].get_absolute_url() in section
    assert reverse("follow", args=["x"]) in section
    assert "followed by 2 you follow" in section


def test_signed_out_home_suggests_nobody(client, circle):
    assert 'data-testid="who-to-follow"' not in client.get(reverse("home")).content.decode()


# --- migrations ---------------------------------------------------------------------


def search_indexes() -> set[str]:
    with connection.cursor() as cursor:
        names = set(connection.introspection.get_constraints(cursor, "accounts_user"))
        names |= set(connection.introspection.get_constraints(cursor, "rooms_space"))
    return names & {"user_search_trgm", "space_search_trgm"}


@pytest.mark.django_db(transaction=True)
def test_search_migrations_apply_and_unapply_on_either_database():
    """The trigram indexes exist on PostgreSQL only; the migrations run both ways on both."""
    from django.db.migrations.executor import MigrationExecutor

    expected = {"user_search_trgm", "space_search_trgm"} if connection.vendor == "postgresql" else set()
    assert search_indexes() == expected
    executor = MigrationExecutor(connection)
    latest = [key for key in executor.loader.graph.leaf_nodes() if key[0] in ("accounts", "rooms")]
    executor.migrate([("accounts", "0003_signed_in_session"), ("rooms", "0006_spacesummary")])
    assert search_indexes() == set()
    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    assert search_indexes() == expected
