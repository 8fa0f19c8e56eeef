# Delivery.space becomes a plain id: notifications' schema no longer points at rooms. The column
# (space_id) and its rows stay; only the foreign-key constraint and its single-column index go.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0002_reminders_move_to_rooms"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterField(
                    model_name="delivery",
                    name="space",
                    field=models.BigIntegerField(blank=True, null=True, db_column="space_id"),
                ),
            ],
            state_operations=[
                migrations.RemoveIndex(model_name="delivery", name="delivery_space_idx"),
                migrations.RemoveField(model_name="delivery", name="space"),
                migrations.AddField(
                    model_name="delivery",
                    name="space_id",
                    field=models.BigIntegerField(blank=True, null=True),
                ),
                migrations.AddIndex(
                    model_name="delivery",
                    index=models.Index(fields=["space_id", "kind", "status"], name="delivery_space_idx"),
                ),
            ],
        ),
    ]
