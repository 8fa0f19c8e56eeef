"""Search: a trigram GIN index over a Space's title and topics, on PostgreSQL only.

Same shape as accounts 0002 (which creates pg_trgm): on exactly the expression
`accounts.selectors.SearchText` compiles to for Spaces, UPPER(title || ' ' || topics::text) (topics
are a JSON list, searched as its text), so LIKE '%Q%' and `%>` are both answered from it; created
through RunPython because a GIN index with an operator class exists only on PostgreSQL, and
SQLite's search is a plain substring match.
"""

from django.db import migrations

# Partial: search offers live and upcoming Spaces only, a small share of all once Spaces pile up,
# and the index then holds nothing search would throw away after reading it.
CREATE = (
    "CREATE INDEX space_search_trgm ON rooms_space "
    "USING gin (UPPER(title || ' ' || (topics)::text) gin_trgm_ops) "
    "WHERE state IN ('live', 'scheduled')"
)
DROP = "DROP INDEX IF EXISTS space_search_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0006_spacesummary"),
        ("accounts", "0004_search_trigram"),
    ]

    operations = [migrations.RunPython(create, drop)]
