"""The pool's check before a connection serves a request (spaces_project/postgresql), and the
statements a connection repeats prepared by the server."""

from __future__ import annotations

import select

import psycopg
import pytest
from django.db import connection
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
