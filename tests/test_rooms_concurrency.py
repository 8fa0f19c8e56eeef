"""The 13th seat under concurrency: real threads, each with its own database connection.

Runs on SQLite (writers serialised by BEGIN IMMEDIATE) and, with DATABASE_URL, on PostgreSQL
(the Space row lock, SELECT ... FOR UPDATE)."""

import threading

import pytest
from django.db import connection, connections

from rooms import services
from rooms.models import Participant
from tests.factories import make_users
from tests.rooms_support import join, live_space, make_host, seat
from tests.strict import require

pytestmark = pytest.mark.django_db(transaction=True)

Role = Participant.Role


def race(fn, jobs: list) -> tuple[list, list]:
    """Run fn(job) for every job at once on its own thread; (results, errors)."""
    results, errors = [], []
    barrier = threading.Barrier(len(jobs))

    def worker(job):
        try:
            barrier.wait(timeout=10)
            results.append(fn(job))
        except Exception as exc:  # noqa: BLE001 - collected and asserted by the caller
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


def stage_of(space) -> dict[str, int]:
    counts: dict[str, int] = {}
    for role in Participant.objects.filter(space=space, removed_at=None).values_list("role", flat=True):
        counts[role] = counts.get(role, 0) + 1
    return counts


@pytest.fixture
def nearly_full():
    """1 host + 2 co-hosts + 9 speakers on stage (12), and 6 listeners with hands raised."""
    host = make_host()
    space = live_space(host)
    join(space, host)
    people = make_users(17, prefix="seat")
    for i, user in enumerate(people[:11]):
        join(space, user)
        seat(space, user, Role.COHOST if i < 2 else Role.SPEAKER)
    hands = people[11:]
    for user in hands:
        join(space, user)
        services.hand_raise(space=space, by=user)
    return space, host, hands


def test_thirteenth_seat_is_given_and_fourteenth_refused(nearly_full):
    space, host, hands = nearly_full
    services.speaker_accept(space=space, by=host, user_id=hands[0].pk)
    assert sum(stage_of(space).get(r, 0) for r in ("host", "cohost", "speaker")) == 13
    with pytest.raises(services.StageFull, match="full"):
        services.speaker_accept(space=space, by=host, user_id=hands[1].pk)
    assert Participant.objects.get(space=space, user=hands[1]).role == Role.LISTENER


def _accept_all_at_once(space, host, hands):
    def accept(user):
        return services.speaker_accept(space=space, by=host, user_id=user.pk)

    return race(accept, hands)


def test_simultaneous_accepts_fill_exactly_the_last_seat(nearly_full):
    space, host, hands = nearly_full
    results, errors = _accept_all_at_once(space, host, hands)
    assert len(results) == 1
    assert len(errors) == len(hands) - 1 and all(isinstance(e, services.StageFull) for e in errors)
    counts = stage_of(space)
    assert (counts["host"], counts["cohost"], counts["speaker"]) == (1, 2, 10)


def test_simultaneous_invitations_accepted_never_make_fourteen(nearly_full):
    space, host, hands = nearly_full
    for user in hands:
        services.speaker_invite(space=space, by=host, user_id=user.pk)
    results, errors = race(lambda user: services.invite_accept(space=space, by=user), hands)
    assert len(results) == 1 and all(isinstance(e, services.StageFull) for e in errors)
    assert stage_of(space)["speaker"] == 10


def test_simultaneous_cohost_appointments_never_make_three():
    host = make_host()
    space = live_space(host)
    join(space, host)
    people = make_users(6, prefix="co")
    for user in people:
        join(space, user)
    results, errors = race(
        lambda user: services.cohost_appoint(space=space, by=host, user_id=user.pk), people
    )
    assert len(results) == 2 and all(isinstance(e, services.StageFull) for e in errors)
    assert stage_of(space)["cohost"] == 2


@pytest.mark.postgres
def test_simultaneous_accepts_on_postgresql(nearly_full):
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    space, host, hands = nearly_full
    for _ in range(3):  # a few rounds, freeing the seat between them
        results, errors = _accept_all_at_once(space, host, hands)
        assert len(results) == 1 and all(isinstance(e, services.StageFull) for e in errors)
        counts = stage_of(space)
        assert counts["speaker"] == 10 and counts["cohost"] == 2
        services.speaker_move_to_audience(space=space, by=host, user_id=results[0].user_id)
        hands = [u for u in hands if u.pk != results[0].user_id]
        for user in hands:
            Participant.objects.filter(space=space, user=user).update(hand_raised_at=None)
            services.hand_raise(space=space, by=user)
