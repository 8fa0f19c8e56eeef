"""The pool's check before a connection serves a request (spaces_project/postgresql), and the
statements a connection repeats prepared by the server."""

from __future__ import annotations

import select

import psycopg
import pytest
from django.db import DataError, connection
from psycopg_pool import ConnectionPool

from spaces_project.postgresql import check_pooled_connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _open() -> psycopg.Connection:
    params = connection.get_connection_params()
    return psycopg.connect(**params, autocommit=True)


def test_a_resting_connection_is_handed_out_without_a_round_trip(monkeypatch):
    asked = []
    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(lambda conn: asked.append(conn)))
    with _open() as conn:
        conn.execute("SELECT 1").fetchall()
        check_pooled_connection(conn)
    assert asked == []


def test_a_connection_the_server_dropped_is_refused():
    with _open() as victim, _open() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [victim.info.backend_pid])
        # The server closes the socket as the backend exits: wait until the client can see it.
        assert select.select([victim.fileno()], [], [], 5)[0]
        with pytest.raises(psycopg.OperationalError):
            check_pooled_connection(victim)


def test_the_server_uses_that_check():
    assert connection.vendor == "postgresql"
    assert connection.pool._check is check_pooled_connection


def test_a_closed_connection_is_refused():
    conn = _open()
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        check_pooled_connection(conn)


def test_a_statement_that_repeats_is_prepared_by_the_server(django_user_model):
    from accounts.backends import ModelBackend

    user = django_user_model.objects.create(username="prepared", password="!")
    threshold = connection.settings_dict["OPTIONS"]["prepare_threshold"]
    assert threshold is not None
    for _ in range(threshold + 1):
        assert ModelBackend().get_user(user.pk) == user  # the query every signed-in page runs
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s", ['%"accounts_user"%']
        )
        assert len(cursor.fetchall()) == 1


TIMESTAMPS = [
    "2026-11-26 08:00:00.123456+00",
    "2026-11-26 08:00:00+00",
    "2026-11-26 08:00:00.5+00",  # PostgreSQL drops a fraction's trailing zeros: half a second
    "2026-11-26 08:00:00.05+00",
    "0001-01-01 00:00:00+00",
    "9999-12-30 23:59:59.999999+00",
    "2024-02-29 12:30:00+05:30",
]


def _read_both(sql_zone: str | None = None) -> list[tuple]:
    """Each literal read by this project's loader and by Django's own, on the same connection."""
    from django.db.backends.postgresql.psycopg_any import register_tzloader

    pairs = []
    with connection.cursor() as ours, connection.cursor() as djangos:
        register_tzloader(connection.timezone, djangos.cursor)  # Django's loader, on that cursor only
        if sql_zone:
            ours.execute(f"SET TIME ZONE '{sql_zone}'")
        for literal in TIMESTAMPS:
            pairs.append(
                tuple(c.execute("SELECT %s::timestamptz", [literal]).fetchone()[0] for c in (ours, djangos))
            )
        ours.execute("SELECT NULL::timestamptz")
        assert ours.fetchone()[0] is None
        if sql_zone:
            ours.execute("SET TIME ZONE 'UTC'")
    return pairs


def test_timestamps_are_read_as_djangos_loader_reads_them():
    from spaces_project.postgresql.base import IsoTzLoader

    loader = connection.connection.adapters.get_loader(1184, psycopg.pq.Format.TEXT)
    assert issubclass(loader, IsoTzLoader) and loader.timezone is connection.timezone
    for ours, djangos in _read_both():
        assert (ours, ours.tzinfo) == (djangos, djangos.tzinfo)
        assert ours.tzinfo is connection.timezone
    # In another session zone too (Django labels the session's wall-clock time with its own zone).
    for ours, djangos in _read_both("Asia/Kolkata"):
        assert (ours, ours.tzinfo) == (djangos, djangos.tzinfo)


def test_what_fromisoformat_does_not_take_goes_to_djangos_loader():
    with connection.cursor() as cursor:
        for literal in ("infinity", "0044-03-15 00:00:00+00 BC"):
            with pytest.raises(DataError):
                cursor.execute("SELECT %s::timestamptz", [literal])
                cursor.fetchone()
