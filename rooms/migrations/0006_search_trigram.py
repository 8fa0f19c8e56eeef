"""Search: trigram GIN indexes over a Space's title and topics, on PostgreSQL only.

Same shape as accounts 0002 (which creates pg_trgm): on UPPER(expression), the expression the
search's `contains` compares, also serving `%>`; created through RunPython because a GIN index with
an operator class exists only on PostgreSQL, and SQLite's search is a plain substring match.
Topics are a JSON list, searched as its text.
"""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import migrations
from django.db.models import TextField
from django.db.models.functions import Cast, Upper


def _indexes():
    return [
        GinIndex(OpClass(Upper("title"), name="gin_trgm_ops"), name="space_title_trgm"),
        GinIndex(OpClass(Upper(Cast("topics", TextField())), name="gin_trgm_ops"), name="space_topics_trgm"),
    ]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("rooms", "Space")
    for index in _indexes():
        schema_editor.add_index(model, index)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("rooms", "Space")
    for index in _indexes():
        schema_editor.remove_index(model, index)


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0005_reminder_schedulerevision"),
        ("accounts", "0002_search_trigram"),
    ]

    operations = [migrations.RunPython(create, drop)]
