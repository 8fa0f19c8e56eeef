"""Search: pg_trgm and trigram GIN indexes over handles and display names, on PostgreSQL only.

The indexes are on UPPER(column) because that is the expression Django's `contains` on an upper-cased
value compares, and pg_trgm folds case itself, so the same index also serves the `%>`
(word similarity) operator. They are created through RunPython rather than Meta.indexes: a GIN
index with an operator class exists only on PostgreSQL, and the embedded SQLite default searches
with a plain substring match (accounts.selectors.search_people) that needs no index. TrigramExtension
does nothing on other databases by itself.
"""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations
from django.db.models.functions import Upper

INDEXES = {
    "user_username_trgm": "username",
    "user_display_name_trgm": "display_name",
}


def _indexes():
    return [GinIndex(OpClass(Upper(field), name="gin_trgm_ops"), name=name) for name, field in INDEXES.items()]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("accounts", "User")
    for index in _indexes():
        schema_editor.add_index(model, index)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("accounts", "User")
    for index in _indexes():
        schema_editor.remove_index(model, index)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [
        TrigramExtension(),
        migrations.RunPython(create, drop),
    ]
