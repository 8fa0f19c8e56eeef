"""Later work for Spaces: the presence sweep and the kept-speech sweep (Celery beat:
CELERY_BEAT_SCHEDULE), and the improved transcript after a Space ends."""

from celery import shared_task

from . import golive, services


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


# acks_late: a worker that dies before the chunks are queued leaves the message to be run again;
# chunks queued twice write nothing twice (dedupe keys).
@shared_task(name="rooms.tasks.golive_fanout", ignore_result=True, acks_late=True)
def golive_fanout(space_id: int) -> int:
    """A Space went live: send the first chunk of its host's followers, queue the others."""
    chunks = golive.golive_chunks(space_id=space_id)
    for ids in chunks[1:]:
        golive_send.delay(space_id, ids)
    # The first chunk (people with a page open come first) is sent here, a broker hop sooner.
    if chunks:
        golive.golive_send(space_id=space_id, follower_ids=chunks[0])
    return len(chunks)


# acks_late: a worker that dies mid-chunk leaves the message for redelivery; the chunk's dedupe
# keys and the outbox's claims keep a second run from writing or sending anything twice.
@shared_task(name="rooms.tasks.golive_send", ignore_result=True, acks_late=True)
def golive_send(space_id: int, follower_ids: list[int]) -> dict[str, int]:
    return golive.golive_send(space_id=space_id, follower_ids=follower_ids)


@shared_task(name="rooms.tasks.recording_process", ignore_result=True, max_retries=3)
def recording_process(recording_id: int) -> None:
    """Turn an ended Space's capture into its replay files (queued as it ends)."""
    from .recordings.processing import recording_process as process

    process(recording_id=recording_id)


@shared_task(name="rooms.tasks.recording_sweep", ignore_result=True)
def recording_sweep() -> int:
    """Delete recordings kept longer than SPACES_RECORDING_DAYS."""
    from .recordings.service import recording_sweep as sweep

    return sweep()
