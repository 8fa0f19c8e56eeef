"""Search: pg_trgm, and a trigram GIN index over a person's handle and display name, on PostgreSQL only.

The index is on exactly the expression `accounts.selectors.SearchText` compiles to for people,
UPPER(username || ' ' || display_name), so both of the search's conditions, LIKE '%Q%' and `%>`
(word similarity: typos), are answered from this one index (pg_trgm folds case itself). One index
over both columns rather than one per column: the planner prices two bitmap scans of one index
well below a sequential scan, where four scans of two indexes lost to it.

Both the extension and the index are created through RunPython that checks the database: they
exist only on PostgreSQL, and the embedded SQLite default searches with a plain substring match
that needs neither. (Django's TrigramExtension skips other databases going forwards but not when
unapplied, where it asks SQLite for pg_extension.) Unapplying drops the index and leaves pg_trgm
installed: other schemas or tools in the database may use it.
"""

from django.db import migrations

CREATE = (
    "CREATE INDEX user_search_trgm ON accounts_user "
    "USING gin (UPPER(username || ' ' || display_name) gin_trgm_ops)"
)
DROP = "DROP INDEX IF EXISTS user_search_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_signed_in_session")]

    operations = [migrations.RunPython(create, drop)]
