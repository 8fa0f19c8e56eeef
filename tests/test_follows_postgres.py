"""Follower counts stay exact under concurrent follows and unfollows (PostgreSQL, real threads)."""

import random
import threading

import pytest
from django.db import connection, connections

from accounts import services
from accounts.models import Follow, User
from tests.factories import UserFactory, make_users
from tests.strict import require

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_in_threads(fn, jobs, threads=24):
    """Run fn(*job) for every job on `threads` threads that start together (below max_connections)."""
    jobs = list(jobs)
    random.Random(7).shuffle(jobs)
    errors = []
    barrier = threading.Barrier(threads)

    def worker(chunk):
        try:
            barrier.wait(timeout=10)
            for job in chunk:
                fn(*job)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(jobs[i::threads],)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    return errors


def test_concurrent_follows_keep_counts_exact():
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    host = UserFactory()
    fans = make_users(40, prefix="cfan")
    # Every fan follows twice at once, and the host follows every fan back at the same moment.
    jobs = [(f, host) for f in fans] * 2 + [(host, f) for f in fans]
    errors = run_in_threads(lambda a, b: services.follow_create(follower=a, followee=b), jobs)
    assert errors == []
    host.refresh_from_db()
    assert host.follower_count == 40 == Follow.objects.filter(followee=host).count()
    assert host.following_count == 40
    assert set(User.objects.filter(username__startswith="cfan").values_list("follower_count", flat=True)) == {
        1
    }


def test_concurrent_unfollows_never_go_below_reality():
    require(connection.vendor == "postgresql", "PostgreSQL (set DATABASE_URL)")
    host = UserFactory()
    fans = make_users(30, prefix="ufan")
    for f in fans:
        services.follow_create(follower=f, followee=host)
    errors = run_in_threads(
        lambda a, b: services.follow_delete(follower=a, followee=b), [(f, host) for f in fans] * 2
    )
    assert errors == []
    host.refresh_from_db()
    assert host.follower_count == 0 == Follow.objects.filter(followee=host).count()
