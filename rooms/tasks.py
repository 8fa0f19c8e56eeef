"""Later work for Spaces: the presence sweep and the kept-speech sweep (Celery beat:
CELERY_BEAT_SCHEDULE), and the improved transcript after a Space ends."""

from celery import shared_task

from . import services


@shared_task(name="rooms.tasks.presence_sweep", ignore_result=True)
def presence_sweep() -> dict[str, int]:
    """Clear vanished sockets and end Spaces whose host has been gone longer than the grace."""
    return services.presence_sweep()


@shared_task(name="rooms.tasks.caption_audio_sweep", ignore_result=True)
def caption_audio_sweep() -> dict[str, int]:
    """Delete caption speech kept longer than its use (rooms.rules.CAPTION_AUDIO_KEEP_HOURS)."""
    from .captions.service import caption_audio_sweep as sweep

    return sweep()


@shared_task(name="rooms.tasks.transcript_improve", ignore_result=True)
def transcript_improve(space_id: int) -> int:
    """Re-decode an ended Space's captions with beam search (queued as it ends)."""
    from .captions.service import transcript_improve as improve

    return improve(space_id=space_id)
