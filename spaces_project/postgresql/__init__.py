"""PostgreSQL connections: the pool's check before a connection is handed to a request."""

from __future__ import annotations

import select

import psycopg
from psycopg_pool import ConnectionPool


def check_pooled_connection(conn: psycopg.Connection) -> None:
    """Raise if `conn` is not fit to serve a request, without a round trip when it plainly is.

    psycopg_pool's own check sends an empty query every time a connection leaves the pool: one
    round trip more on every request. A connection resting in the pool has nothing to read, so
    the socket tells us cheaply whether anything happened: when the server went away (restart,
    terminated backend, closed socket) it is readable, and only then is the server asked.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
    if poller.poll(0):
        ConnectionPool.check_connection(conn)
