"""Reads that pages share. Each returns a queryset or value with its joins already done."""

from __future__ import annotations

from django.contrib.postgres.lookups import TrigramWordSimilar
from django.contrib.postgres.search import TrigramWordSimilarity
from django.db import connection
from django.db.models import (
    Case,
    Count,
    Exists,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Upper
from django.db.models.lookups import Contains, StartsWith

from .models import Follow, User
from .rules import SEARCH_RESULTS, SEARCH_SUBSTRING_MIN_CHARS, SEARCH_TYPO_SIMILARITY, WHO_TO_FOLLOW_SHOWN


def user_with_follow_state(*, username: str, viewer) -> QuerySet[User]:
    qs = User.objects.filter(username__iexact=username)
    if viewer.is_authenticated:
        qs = qs.annotate(
            viewer_follows=Exists(Follow.objects.filter(follower=viewer, followee=OuterRef("pk"))),
            follows_viewer=Exists(Follow.objects.filter(follower=OuterRef("pk"), followee=viewer)),
            viewer_email_on_live=Exists(
                Follow.objects.filter(follower=viewer, followee=OuterRef("pk"), email_on_live=True)
            ),
        )
    return qs


def email_on_live(*, follower, followee: User) -> bool:
    if not follower.is_authenticated:
        return False
    return Follow.objects.filter(follower=follower, followee=followee, email_on_live=True).exists()


def person_by_handle(*, username: str) -> User | None:
    return User.objects.filter(username__iexact=username, is_active=True).first()


def followers_of(*, user: User) -> QuerySet[User]:
    return User.objects.filter(following_set__followee=user).order_by("-following_set__created_at", "-pk")


def following_of(*, user: User) -> QuerySet[User]:
    return User.objects.filter(follower_set__follower=user).order_by("-follower_set__created_at", "-pk")


def is_following(*, follower, followee: User) -> bool:
    if not follower.is_authenticated:
        return False
    return Follow.objects.filter(follower=follower, followee=followee).exists()


def is_moderator(*, user, perm: str) -> bool:
    """The one moderator check: an active staff account holding `perm` (the Moderators group's
    permissions, accounts.groups, or a superuser's)."""
    return bool(user is not None and user.is_active and user.is_staff and user.has_perm(perm))


# --- search and suggestions ------------------------------------------------------


class SearchText(Func):
    """The text a search reads of a row: its text columns joined by spaces, upper-cased,
    UPPER(a || ' ' || b). The PostgreSQL trigram GIN indexes are built on exactly this SQL (accounts
    and rooms search migrations); it has no parameters, so every plan, generic or not, matches it."""

    arg_joiner = " || ' ' || "
    template = "UPPER(%(expressions)s)"
    output_field = TextField()


def search_matches(
    *,
    queryset: QuerySet,
    query: str,
    text: SearchText,
    prefix_field: str,
    order: list,
    limit: int,
    closest_typos_first: bool = True,
) -> list:
    """Rows of `queryset` matching `query`, best first; the search of people and of Spaces.

    Exact matches come first and are ranked by cheap keys only: rows whose `prefix_field` starts
    with the query, then `order`. A query of one or two characters has no trigram to look up, so
    it matches `prefix_field` prefixes only. On PostgreSQL, when fewer than `limit` rows contain
    the query, the rest is filled with rows that are a typo away (`%>`: some word of `text` is
    close to the query), closest first unless `closest_typos_first` is off (then by `order`, which
    spares computing the similarity a second time for every candidate). Both filters are what the
    trigram GIN index on `text` answers (LIKE '%Q%' and `%>`), so the index finds the rows and the
    typo pass runs only when exact matches ran short. The embedded SQLite default has no pg_trgm:
    substrings only. At most two queries."""
    needle = query.upper()
    if len(needle) < SEARCH_SUBSTRING_MIN_CHARS:
        return list(queryset.filter(StartsWith(Upper(prefix_field), needle)).order_by(*order)[:limit])
    starts = Case(
        When(StartsWith(Upper(prefix_field), needle), then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )
    found = list(
        queryset.filter(Contains(text, needle))
        .annotate(rank_prefix=starts)
        .order_by("-rank_prefix", *order)[:limit]
    )
    if len(found) < limit and connection.vendor == "postgresql":
        typos = queryset.filter(TrigramWordSimilar(text, needle)).exclude(Contains(text, needle))
        if closest_typos_first:
            typos = typos.annotate(rank_similarity=TrigramWordSimilarity(needle, text)).order_by(
                "-rank_similarity", *order
            )
        else:
            typos = typos.order_by(*order)
        found += list(typos[: limit - len(found)])
    return found


def people_search_text() -> SearchText:
    return SearchText("username", "display_name")


def search_typo_threshold() -> None:
    """Let `%>` accept words as far from the query as SEARCH_TYPO_SIMILARITY, for the rest of the
    current transaction only (pg_trgm's default, 0.6, refuses one typo in a short name)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('pg_trgm.word_similarity_threshold', %s, true)", [str(SEARCH_TYPO_SIMILARITY)]
        )


def search_people(*, query: str, limit: int = SEARCH_RESULTS) -> list[User]:
    """Active people whose handle or display name contains `query` (handle prefixes first, then the
    most followed) or, on PostgreSQL, is one typo away from it (`search_matches`). Call inside a
    transaction that has run `search_typo_threshold()`."""
    return search_matches(
        queryset=User.objects.filter(is_active=True, is_suspended=False),
        query=query,
        text=people_search_text(),
        prefix_field="username",
        order=["-follower_count", "pk"],
        limit=limit,
    )


def who_to_follow(*, viewer, limit: int = WHO_TO_FOLLOW_SHOWN) -> list[User]:
    """People to suggest to `viewer`: first those followed by the people they follow (most such
    follows first), then the most-followed accounts; never themselves nor anyone they already
    follow. Two queries, whatever the size of either circle."""
    if not getattr(viewer, "is_authenticated", False):
        return []
    followed = Follow.objects.filter(follower_id=viewer.pk).values("followee_id")
    candidates = (
        User.objects.filter(is_active=True, is_suspended=False).exclude(pk=viewer.pk).exclude(pk__in=followed)
    )
    # Filtering and counting over the same join counts only follows by people the viewer follows.
    circle = list(
        candidates.filter(follower_set__follower_id__in=followed)
        .annotate(mutual=Count("follower_set", distinct=True))
        .order_by("-mutual", "-follower_count", "pk")[:limit]
    )
    if len(circle) < limit:
        popular = (
            candidates.filter(follower_count__gt=0)
            .exclude(pk__in=[p.pk for p in circle])
            .order_by("-follower_count", "pk")[: limit - len(circle)]
        )
        circle += list(popular)
    return circle
