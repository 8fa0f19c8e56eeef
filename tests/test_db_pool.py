"""PostgreSQL connections come from Django's psycopg pool, checked by psycopg_pool as they leave it,
and the statements a connection repeats are prepared by the server."""

from __future__ import annotations

import pytest
from django.contrib.auth.backends import ModelBackend
from django.db import connection

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_a_connection_the_server_dropped_is_not_handed_out_again():
    pool = connection.pool
    assert pool is not None
    with pool.connection() as victim:
        pid = victim.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    # The pool checks each connection as it hands it out, so a dead one is replaced, not used.
    with pool.connection() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.info.backend_pid != pid


def test_a_statement_that_repeats_is_prepared_by_the_server(django_user_model):
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
