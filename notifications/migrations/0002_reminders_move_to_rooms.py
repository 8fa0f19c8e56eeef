# Reminder and ScheduleRevision belong to rooms now. Their tables stay; rooms'
# 0005_reminder_schedulerevision takes them over and renames them.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="Reminder"),
                migrations.DeleteModel(name="ScheduleRevision"),
            ],
            database_operations=[],
        ),
    ]
