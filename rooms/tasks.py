"""Periodic work for Spaces (Celery beat: CELERY_BEAT_SCHEDULE["rooms-presence-sweep"])."""

from celery import shared_task

from . import services


@shared_task(name="rooms.tasks.presence_sweep", ignore_result=True)
def presence_sweep() -> dict[str, int]:
    """Clear vanished sockets and end Spaces whose host has been gone longer than the grace."""
    return services.presence_sweep()
