"""Celery tasks: beat runs `sweep` every NOTIFICATIONS_SWEEP_SECONDS; it enqueues `send_batch`es.

No task is scheduled for later (no ETA/countdown): what is due lives in the Delivery table, so a
reschedule or a cancellation is a database update, and a broker restart loses nothing.
"""

from __future__ import annotations

from celery import shared_task

from . import outbox


@shared_task(name="notifications.tasks.sweep", ignore_result=True)
def sweep() -> int:
    batches = outbox.outbox_sweep()
    for ids in batches:
        send_batch.delay(ids)
    return sum(len(ids) for ids in batches)


# acks_late: a worker that dies mid-batch leaves its message unacknowledged for redelivery. Either
# way the sweep re-enqueues anything still unsent after the claim timeout, and each row's claim
# keeps a redelivered batch from sending what was already sent.
@shared_task(name="notifications.tasks.send_batch", ignore_result=True, acks_late=True)
def send_batch(ids: list[int]) -> dict[str, int]:
    return outbox.send_batch(ids=ids)
