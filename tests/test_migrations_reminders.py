"""Reminders moved from notifications to rooms, and Delivery.space became a plain id: the rows a
person set before the move are still theirs after it, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests.factories import UserFactory

BEFORE = [("rooms", "0004_captionline_audio_transcript_improved"), ("notifications", "0001_initial")]
AFTER = [("rooms", "0005_reminder_schedulerevision"), ("notifications", "0003_delivery_space_id")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def back_to_latest():
    """The tests after this one need every migration applied again."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_reminders_revisions_and_outbox_rows_survive_the_move(back_to_latest):
    old = migrate(BEFORE)
    # People through today's model: the accounts app stays migrated to its latest.
    host = UserFactory(username="mig-host")
    person = UserFactory(username="mig-person")
    Space = old.get_model("rooms", "Space")
    space = Space.objects.create(
        host_id=host.pk, title="Before the move", state="scheduled", scheduled_for=timezone.now()
    )
    old.get_model("notifications", "Reminder").objects.create(user_id=person.pk, space=space)
    old.get_model("notifications", "ScheduleRevision").objects.create(space=space, sequence=3)
    old.get_model("notifications", "Delivery").objects.create(
        recipient_id=person.pk,
        kind="space_starting",
        space=space,
        due_at=timezone.now(),
        dedupe_key="k1",
        title="t",
    )

    new = migrate(AFTER)
    Reminder = new.get_model("rooms", "Reminder")
    assert list(Reminder.objects.values_list("user_id", "space_id")) == [(person.pk, space.pk)]
    assert new.get_model("rooms", "ScheduleRevision").objects.get(space_id=space.pk).sequence == 3
    assert new.get_model("notifications", "Delivery").objects.get(dedupe_key="k1").space_id == space.pk
    # The unique rule came along: the same reminder twice is still refused.
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Reminder.objects.create(user_id=person.pk, space_id=space.pk)
    # A Delivery may now name a Space id that no longer exists (no foreign key): its check at send
    # time cancels it (tests/test_reminders.py).
    new.get_model("notifications", "Delivery").objects.create(
        recipient_id=person.pk,
        kind="space_live",
        space_id=987654,
        due_at=timezone.now(),
        dedupe_key="k2",
        title="t",
    )
