# Reminder and ScheduleRevision, moved here from notifications with their rows: the state takes
# over the existing tables, then they are renamed to this app's names.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0004_captionline_audio_transcript_improved"),
        ("notifications", "0002_reminders_move_to_rooms"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Reminder",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "space",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="reminders",
                                to="rooms.space",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="reminders",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "notifications_reminder",
                        "indexes": [models.Index(fields=["space", "user"], name="reminder_space_idx")],
                        "constraints": [
                            models.UniqueConstraint(fields=("user", "space"), name="reminder_once")
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="ScheduleRevision",
                    fields=[
                        (
                            "space",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                primary_key=True,
                                related_name="schedule_revision",
                                serialize=False,
                                to="rooms.space",
                            ),
                        ),
                        ("sequence", models.PositiveIntegerField(default=0)),
                        ("changed_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={"db_table": "notifications_schedulerevision"},
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="reminder", table=None),
        migrations.AlterModelTable(name="schedulerevision", table=None),
    ]
