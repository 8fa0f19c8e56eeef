"""Fixed query counts with a crowd: 500 listeners, 100 follows (STYLE.md §3)."""

import pytest
from django.urls import reverse

from accounts.models import Follow, User
from rooms import services
from rooms.models import Connection, Participant, Space
from rooms.selectors import discover_spaces, home_sections, space_snapshot
from tests.factories import UserFactory, make_users
from tests.rooms_support import live_space, make_host

pytestmark = pytest.mark.django_db

Role = Participant.Role


def crowd(space: Space, users: list[User], *, role: str = Role.LISTENER) -> None:
    """Seat `users` in `space` with one fresh connection each, in bulk (the join path is tested
    elsewhere; here only the reads are measured), and recount its audience."""
    from django.utils import timezone

    now = timezone.now()
    participants = Participant.objects.bulk_create(
        [
            Participant(space=space, user=u, role=role, stage_since=now if role != Role.LISTENER else None)
            for u in users
        ]
    )
    Connection.objects.bulk_create(
        [
            Connection(
                channel_name=f"bulk.{space.pk}.{p.user_id}",
                space=space,
                participant=p,
                user_id=p.user_id,
                process="bulk",
                seen_at=now,
            )
            for p in participants
        ]
    )
    # Rows written behind the services' back: count the audience as the presence sweep would.
    services.audience_recount(space_id=space.pk)


@pytest.fixture
def big_room():
    host = make_host()
    space = live_space(host)
    listeners = make_users(500, prefix="crowd")
    crowd(space, listeners)
    speakers = make_users(10, prefix="spk")
    crowd(space, speakers, role=Role.SPEAKER)
    for user in listeners[:40]:
        services.hand_raise(space=space, by=user)
    return space, host, listeners


def test_snapshot_query_count_is_fixed_with_500_listeners(big_room, django_assert_max_num_queries):
    space, host, listeners = big_room
    with django_assert_max_num_queries(5):
        snapshot = space_snapshot(space=space, viewer=listeners[0])
    assert snapshot["listener_count"] == 500
    assert len(snapshot["stage"]) == 11 and len(snapshot["hands"]) == 40
    assert len(snapshot["listeners"]) == 50
    with django_assert_max_num_queries(5):
        space_snapshot(space=space, viewer=host)


def test_snapshot_for_followed_policy_costs_one_more_query(big_room, django_assert_max_num_queries):
    space, _, listeners = big_room
    Space.objects.filter(pk=space.pk).update(speak_policy=Space.SpeakPolicy.FOLLOWED)
    with django_assert_max_num_queries(6):
        space_snapshot(space=space, viewer=listeners[1])


@pytest.fixture
def busy_home():
    """A viewer following 100 accounts; 20 of them host a live Space and 30 speak in one; each
    Space has 25 listeners (500 in all)."""
    viewer = UserFactory()
    followed = make_users(100, prefix="star")
    Follow.objects.bulk_create([Follow(follower=viewer, followee=u) for u in followed])
    listeners = make_users(500, prefix="ear")
    for i in range(20):
        User.objects.filter(pk=followed[i].pk).update(hosting_granted=True)
        space = services.space_create(host=followed[i], title=f"Space {i}")
        crowd(space, followed[20 + i * 2 : 22 + i * 2] if i < 15 else [], role=Role.SPEAKER)
        crowd(space, listeners[i * 25 : (i + 1) * 25])
    return viewer


def test_home_sections_query_count_is_fixed(busy_home, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):  # with the shared parts uncached (the worst case)
        sections = home_sections(viewer=busy_home)
    live_now = sections["live_now"]
    assert len(live_now) == 20
    people = [entry.user_id for entry in live_now]
    assert len(set(people)) == len(people)  # each person once
    live_ids = set(Space.objects.filter(state="live").values_list("pk", flat=True))
    assert all(entry.space_id in live_ids for entry in live_now)
    assert all(f'href="/spaces/{entry.space_id}/"' in entry.html for entry in live_now)
    with django_assert_max_num_queries(1):
        discover = discover_spaces()
    assert len(discover) == 20 and all(s.listener_count == 25 for s in discover)
    assert sections["discover_html"].count('class="space-card"') == 20
    assert all(s.host.username for s in discover)  # host already joined in


def test_live_now_lists_hosts_and_speakers_the_viewer_follows():
    viewer = UserFactory()
    host, speaker, stranger = make_host(), UserFactory(), make_host()
    for u in (host, speaker):
        Follow.objects.create(follower=viewer, followee=u)
    space = live_space(host)
    crowd(space, [speaker], role=Role.SPEAKER)
    live_space(stranger)
    pairs = {(e.user_id, e.space_id) for e in home_sections(viewer=viewer)["live_now"]}
    assert pairs == {(host.pk, space.pk), (speaker.pk, space.pk)}
    assert home_sections(viewer=type("Anon", (), {"is_authenticated": False})())["live_now"] == []


def test_home_page_renders_with_a_fixed_query_count(client, busy_home, django_assert_max_num_queries):
    client.force_login(busy_home)
    with django_assert_max_num_queries(20):
        response = client.get(reverse("home"))
    assert response.status_code == 200


def test_a_listener_arriving_in_a_crowd_costs_a_fixed_number_of_queries(
    big_room, django_assert_max_num_queries
):
    """What the websocket's join does in the database thread once the hub keeps the shared part:
    the join (no lock on the Space, no count over the audience) and the viewer's own snapshot,
    which takes their Participant row from the join instead of reading it again."""
    from rooms.selectors import space_snapshot_shared

    space, _, _ = big_room
    newcomer = UserFactory()
    shared = space_snapshot_shared(space_id=space.pk)
    # The Space, the entry rules (removed, blocked, tickets), the Participant row made and locked,
    # the Connection, the Audience moved and read; then the Audience for the count. Four more are
    # this test's savepoints (BEGIN and COMMIT outside a test).
    with django_assert_max_num_queries(14):
        me = services.participant_join(space=space, user=newcomer, channel_name="new.1", process="t")
        snapshot = space_snapshot(space=space, viewer=newcomer, shared=shared, me=me)
    assert snapshot["me"]["role"] == Role.LISTENER and snapshot["listener_count"] == 501
