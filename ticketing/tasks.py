"""Celery entry points; the work itself is in ticketing.services."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="ticketing.tasks.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    return services.tickets_sweep()


@shared_task(name="ticketing.tasks.refund_space", ignore_result=True)
def refund_space(space_id: int) -> int:
    return services.refunds_process_for_space(space_id=space_id)
