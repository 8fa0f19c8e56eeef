"""Search: pg_trgm, and a trigram GIN index over a person's handle and display name, on PostgreSQL only.

The index is on exactly the expression `accounts.selectors.SearchText` compiles to for people,
UPPER(username || ' ' || display_name), so both of the search's conditions, LIKE '%Q%' and `%>`
(word similarity: typos), are answered from this one index (pg_trgm folds case itself). One index
over both columns rather than one per column: the planner prices two bitmap scans of one index
well below a sequential scan, where four scans of two indexes lost to it.

It is created through RunPython because a GIN index with an operator class exists only on
PostgreSQL; the embedded SQLite default searches with a plain substring match that needs no index.
TrigramExtension does nothing on other databases by itself.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

CREATE = (
    "CREATE INDEX user_search_trgm ON accounts_user "
    "USING gin (UPPER(username || ' ' || display_name) gin_trgm_ops)"
)
DROP = "DROP INDEX IF EXISTS user_search_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [
        TrigramExtension(),
        migrations.RunPython(create, drop),
    ]
