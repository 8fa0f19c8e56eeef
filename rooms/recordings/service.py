"""Recording a Space: turning it on and off, the capture's chunks, the speaker marks, the end of
the Space, deleting a recording and the retention sweep. Writes only; reads are in selectors.py.

Where the audio comes from (docs/architecture.md, "Recordings"):
- peer-to-peer: the host's browser records what it hears plus its own mic and uploads numbered
  chunks every few seconds (`recording_chunk_save`), so a crash loses at most the chunk in flight;
- Janus: the AudioBridge records its own mix on the Janus host (rooms.janus).
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from ..audio import audio_mode
from ..events import publish_on_commit
from ..models import Participant, Recording, RecordingChunk, Space, SpeakerMark
from ..services import NotLive, RoomError, RoomForbidden, _bump, _lock

logger = logging.getLogger(__name__)

SESSION_RE = re.compile(r"^[A-Za-z0-9]{8,32}$")
CHUNK_MAX_BYTES = 1024 * 1024  # a few seconds of Opus is a few kilobytes; this is generous
CHUNK_SEQ_MAX = 100_000


def _seconds_in(space: Space, at: dt.datetime | None = None) -> float:
    at = at or timezone.now()
    return max(0.0, round((at - (space.started_at or at)).total_seconds(), 3))


def _may_record(space: Space, user) -> bool:
    if user.pk == space.host_id:
        return True
    return Participant.objects.filter(
        space=space, user_id=user.pk, role=Participant.Role.COHOST, removed_at=None
    ).exists()


def recording_toggle(*, space: Space, by, on: bool) -> Space:
    """The host or a co-host turns recording on or off: before the Space goes live (it starts
    recording at once when it does) or while it is live. Everyone is told (`recording_toggled`)."""
    with transaction.atomic():
        space = _lock(space.pk, live=False)
        if space.state not in (Space.State.SCHEDULED, Space.State.LIVE):
            raise NotLive("This Space has ended; its recording can't be turned on or off any more.")
        if not _may_record(space, by):
            raise RoomForbidden("Only the host or a co-host can turn recording on or off.")
        if space.recording_on == on:
            return space
        space.recording_on = on
        space.save(update_fields=["recording_on", "updated_at"])
        if space.state == Space.State.LIVE:
            _span_edit(space, on=on)
            publish_on_commit(space.pk, {"type": "recording_toggled", "v": _bump(space), "on": on})
    return space


def _span_edit(space: Space, *, on: bool) -> Recording:
    """Open or close a recorded stretch (the Space is locked and live)."""
    recording, created = Recording.objects.get_or_create(space=space, defaults={"mode": audio_mode()})
    now = _seconds_in(space)
    spans = [list(span) for span in recording.spans]
    if on and (not spans or spans[-1][1] is not None):
        spans.append([now, None])
    elif not on and spans and spans[-1][1] is None:
        spans[-1][1] = max(now, spans[-1][0])
    recording.spans = spans
    recording.save(update_fields=["spans"])
    if recording.mode == Recording.Mode.JANUS:
        name = f"space-{space.pk}-{len(spans)}.wav" if on else ""
        if on:
            recording.janus_files = [*recording.janus_files, name]
            recording.save(update_fields=["janus_files"])
        space_id = space.pk
        transaction.on_commit(lambda: _janus_recording(space_id=space_id, on=on, name=name))
    return recording


def _janus_recording(*, space_id: int, on: bool, name: str) -> None:
    from .. import janus

    try:
        janus.room_recording(space_id=space_id, on=on, name=name)
    except janus.JanusError:
        logger.exception("could not turn the Janus recording of Space %s %s", space_id, "on" if on else "off")


def recording_on_start(*, space: Space) -> None:
    """Called as a Space goes live (locked, in its transaction): a Space set to record starts now."""
    if space.recording_on:
        _span_edit(space, on=True)


def recording_on_end(*, space: Space) -> None:
    """Called as a live Space ends (locked, in its transaction): close the last stretch and queue
    the processing. The recording browser's last chunk may still be on its way; the task waits a
    little for it (SPACES_RECORDING_CHUNK_SECONDS)."""
    recording = Recording.objects.filter(space=space).first()
    if space.recording_on:
        space.recording_on = False
        space.save(update_fields=["recording_on"])
        if recording is not None:
            recording = _span_edit(space, on=False)
    if recording is None:
        return
    recording.state = Recording.State.PROCESSING
    recording.save(update_fields=["state"])
    recording_id = recording.pk
    transaction.on_commit(lambda: recording_process_later(recording_id=recording_id))


def recording_process_later(*, recording_id: int) -> None:
    from ..tasks import recording_process

    recording_process.apply_async((recording_id,), countdown=settings.SPACES_RECORDING_CHUNK_SECONDS + 2)


def recording_chunk_save(*, space: Space, by, session: str, seq: int, data: bytes) -> RecordingChunk:
    """Keep one numbered chunk of the host's browser capture. A chunk sent twice (a retry after a
    reconnect) is kept once. Chunks are taken while the Space records and until it is processed."""
    if not SESSION_RE.match(session):
        raise RoomError("The recording session must be 8 to 32 letters or digits.", code="bad_field")
    if not 0 <= seq <= CHUNK_SEQ_MAX:
        raise RoomError(f"Chunk numbers run from 0 to {CHUNK_SEQ_MAX}.", code="bad_field")
    if not data:
        raise RoomError("That chunk is empty.", code="bad_field")
    if len(data) > CHUNK_MAX_BYTES:
        raise RoomError(f"Chunks are limited to {CHUNK_MAX_BYTES} bytes.", code="too_large")
    if by.pk != space.host_id:
        raise RoomForbidden("Only the host's browser records this Space.")
    recording = Recording.objects.filter(space=space).first()
    if recording is None or recording.mode != Recording.Mode.P2P:
        raise RoomError("This Space isn't being recorded.", code="not_recording")
    if recording.state not in (Recording.State.CAPTURING, Recording.State.PROCESSING):
        raise RoomError("This recording is closed.", code="not_recording")
    existing = RecordingChunk.objects.filter(recording=recording, session=session, seq=seq).first()
    if existing is not None:
        return existing
    chunk = RecordingChunk(recording=recording, session=session, seq=seq, size=len(data))
    chunk.file.save(f"{seq:06d}.webm", ContentFile(data), save=False)
    try:
        with transaction.atomic():
            chunk.save()
    except Exception:
        default_storage.delete(chunk.file.name)
        raise
    return chunk


def speaker_mark(*, space: Space, user) -> None:
    """A stage member started talking: a new chapter when it is someone other than the last one."""
    last = (
        SpeakerMark.objects.filter(space=space)
        .order_by("-at", "-pk")
        .values_list("user_id", flat=True)
        .first()
    )
    if last == user.pk:
        return
    started = Space.objects.filter(pk=space.pk).values_list("started_at", flat=True).first()
    at = max(0.0, (timezone.now() - started).total_seconds()) if started else 0.0
    SpeakerMark.objects.create(space=space, user=user, name=user.name, at=round(at, 3))


def recording_files(recording: Recording) -> list[str]:
    names = [f.name for f in (recording.web_audio, recording.podcast_audio) if f]
    names += [name for name in recording.chunks.values_list("file", flat=True) if name]
    return names


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("could not delete recording file %s", name)


def recording_delete(*, space: Space, by) -> None:
    """The host deletes the recording at any time: its files leave storage and it leaves every page
    and the feed. While live, recording stops (everyone is told)."""
    with transaction.atomic():
        space = _lock(space.pk, live=False)
        if by.pk != space.host_id:
            raise RoomForbidden("Only the host can delete this Space's recording.")
        recording = Recording.objects.filter(space=space).first()
        if recording is None:
            raise RoomError("There's no recording to delete.", code="not_found")
        _recording_drop(recording)
        if space.recording_on:
            space.recording_on = False
            space.save(update_fields=["recording_on", "updated_at"])
            if space.state == Space.State.LIVE:
                publish_on_commit(space.pk, {"type": "recording_toggled", "v": _bump(space), "on": False})


def _recording_drop(recording: Recording) -> None:
    names = recording_files(recording)
    janus_files = list(recording.janus_files)
    recording.delete()
    transaction.on_commit(lambda: _delete_files(names))
    if janus_files:
        from ..janus import recording_files_delete

        transaction.on_commit(lambda: recording_files_delete(names=janus_files))


def recording_podcast_set(*, space: Space, by, on: bool) -> Recording:
    """The host lists a replay in their podcast feed, or takes it out."""
    with transaction.atomic():
        recording = Recording.objects.select_for_update().filter(space_id=space.pk).first()
        if recording is None:
            raise RoomError("There's no recording here.", code="not_found")
        if by.pk != space.host_id:
            raise RoomForbidden("Only the host can choose what goes into their podcast.")
        recording.in_podcast = on
        recording.save(update_fields=["in_podcast"])
    return recording


def replay_played(*, recording: Recording) -> None:
    from django.db.models import F

    Recording.objects.filter(pk=recording.pk).update(play_count=F("play_count") + 1)


def recording_sweep(*, now: dt.datetime | None = None) -> int:
    """Delete recordings older than SPACES_RECORDING_DAYS (0 keeps them). Counted from the end of
    their Space. Returns how many were deleted."""
    days = settings.SPACES_RECORDING_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    deleted = 0
    for recording in Recording.objects.filter(space__ended_at__lt=cutoff).exclude(
        state=Recording.State.CAPTURING
    )[:200]:
        with transaction.atomic():
            _recording_drop(recording)
        deleted += 1
    return deleted
