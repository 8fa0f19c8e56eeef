"""Only a lost or refused database connection becomes the 503 page; SQL errors and deadlocks are
real errors (Django's 500, logged at ERROR)."""

from __future__ import annotations

import socket
import sqlite3

import psycopg
import pytest
from django.db import InterfaceError, OperationalError, connection
from django.test import RequestFactory

from spaces_project.middleware import DatabaseUnavailableMiddleware


def django_error(cause: Exception) -> OperationalError:
    """The driver's error as Django raises it: its own class, with the driver's as the cause."""
    try:
        raise OperationalError(*cause.args) from cause
    except OperationalError as exc:
        return exc


def answer(exc: Exception):
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    return middleware.process_exception(RequestFactory().get("/"), exc)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_postgres_connection_is_the_503_page():
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(host="127.0.0.1", port=closed_port(), user="postgres", connect_timeout=2)
    response = answer(django_error(refused.value))
    assert response.status_code == 503 and response["Retry-After"] == "5"


def test_an_unopenable_sqlite_file_is_the_503_page(tmp_path):
    with pytest.raises(sqlite3.OperationalError) as failed:
        sqlite3.connect(tmp_path / "missing" / "db.sqlite3").execute("select 1")
    assert answer(django_error(failed.value)).status_code == 503


def test_a_closed_connection_is_the_503_page():
    assert answer(InterfaceError("connection already closed")).status_code == 503


@pytest.mark.django_db
def test_an_sql_error_is_not_the_503_page():
    with pytest.raises(Exception) as failed, connection.cursor() as cursor:
        cursor.execute("SELECT no_such_column FROM no_such_table")
    assert answer(failed.value) is None  # Django answers 500 and logs it at ERROR


def test_a_locked_sqlite_database_is_not_the_503_page(tmp_path):
    path = tmp_path / "db.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sqlite3.OperationalError, match="locked") as locked:
        sqlite3.connect(path, timeout=0).execute("INSERT INTO t VALUES (1)")
    holder.close()
    assert answer(django_error(locked.value)) is None


@pytest.mark.django_db
def test_a_deadlock_is_not_the_503_page():
    if connection.vendor != "postgresql":
        return  # PostgreSQL's own deadlock error; SQLite's contention is the test above
    with pytest.raises(OperationalError) as failed, connection.cursor() as cursor:
        cursor.execute("DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; END $$")
    assert isinstance(failed.value.__cause__, psycopg.errors.DeadlockDetected)
    assert answer(failed.value) is None
