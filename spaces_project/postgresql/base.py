"""Django's PostgreSQL backend, with the pool's check replaced by `check_pooled_connection`."""

from __future__ import annotations

from django.db.backends.postgresql import base

from . import check_pooled_connection


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        # Django hands psycopg_pool its own check (an empty query on every checkout) and offers no
        # setting for another; the pool keeps the one it calls in `_check`.
        if pool is not None and pool._check is not check_pooled_connection:
            pool._check = check_pooled_connection
        return pool
