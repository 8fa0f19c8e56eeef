"""Captions as the Space sees them: live `caption` events, stored lines, and the host's transcript.

Write side (STYLE.md §2): `caption_line_record` keeps a final caption (and, with Whisper, its
speech) and publishes it; `transcript_publish`, `transcript_unpublish` and `transcript_delete` are
the host's choices after the Space ends; `transcript_improve` re-decodes the kept speech with beam
search once the Space has ended (a Celery task, `rooms.tasks.transcript_improve`) and then forgets
the speech.

The glue: one `CaptionPool` per process (per event loop), made on first use by `caption_pool()`.
Its events come back in the event loop and are queued to one relay task (a speaker's partials at
most every PARTIAL_EVERY_SECONDS), which hands them in batches to a thread: recognition never
runs in the loop, and neither does the database. Order is kept: a speaker's partials and final
reach listeners in the order the recogniser made them.
"""

from __future__ import annotations

import asyncio
import io
import logging
import wave
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.core.files.base import ContentFile
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from notifications.services import notify
from rooms import rules
from rooms.events import publish_on_commit
from rooms.models import CaptionLine, Space, Transcript
from rooms.services import NotLive, RoomError, RoomForbidden

from .engine import SAMPLE_RATE, WHISPER_ENGINE, engine_path_from_settings, model_from_settings
from .events import CaptionEvent, EngineErrorEvent, LaggingEvent, PoolEvent
from .pool import CaptionPool

logger = logging.getLogger(__name__)

# A caption event goes to every listener, so partials are its biggest cost: each speaker's are
# sent at most this often (the newest wins; finals always go at once). See docs/benchmarks.md.
PARTIAL_EVERY_SECONDS = 0.5
RELAY_BUFFER = 2000  # events waiting for the relay; past this the oldest partials go first
_SPEAKER_CACHE = 512


# --- the host's transcript --------------------------------------------------------------------


def _host_space(space: Space, by, doing: str) -> Space:
    space = Space.objects.select_for_update(no_key=True).get(pk=space.pk)
    if by is None or by.pk != space.host_id:
        raise RoomForbidden(f"Only the host can {doing} this transcript.")
    if space.state != Space.State.ENDED:
        raise NotLive(f"You can {doing} the transcript once the Space has ended.")
    return space


def _transcript(space: Space) -> Transcript:
    transcript, _ = Transcript.objects.select_for_update().get_or_create(space=space)
    if transcript.deleted_at is not None:
        raise RoomError("This transcript was deleted.", code="not_found")
    return transcript


def transcript_publish(*, space: Space, by) -> Transcript:
    """Show the transcript to everyone on the ended Space page."""
    with transaction.atomic():
        space = _host_space(space, by, "publish")
        transcript = _transcript(space)
        if not CaptionLine.objects.filter(space=space).exists():
            raise RoomError(
                "There's nothing to publish: no one was captioned in this Space.", code="conflict"
            )
        if transcript.published_at is None:
            transcript.published_at = timezone.now()
            transcript.save(update_fields=["published_at", "updated_at"])
    return transcript


def transcript_unpublish(*, space: Space, by) -> Transcript:
    """Take the transcript off the Space page; the host still has it."""
    with transaction.atomic():
        space = _host_space(space, by, "unpublish")
        transcript = _transcript(space)
        if transcript.published_at is not None:
            transcript.published_at = None
            transcript.save(update_fields=["published_at", "updated_at"])
    return transcript


def _forget_audio(names: list[str]) -> None:
    from django.core.files.storage import default_storage

    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("could not delete caption audio %s", name)


CAPTION_AUDIO_FOLDER = "captions"


def caption_audio_sweep(*, now=None) -> dict[str, int]:
    """Delete kept speech that has outlived its use. `transcript_improve` deletes it right after a
    Space ends; this catches what that missed: lines of Spaces over for CAPTION_AUDIO_KEEP_HOURS
    whose re-decode never ran or failed, and files no caption line names (a final whose transaction
    rolled back after its file was written), once they are as old."""
    from django.core.files.storage import default_storage

    cutoff = (now or timezone.now()) - timedelta(hours=rules.CAPTION_AUDIO_KEEP_HOURS)
    with transaction.atomic():
        stale = CaptionLine.objects.filter(space__ended_at__lt=cutoff).exclude(audio="")
        names = list(stale.values_list("audio", flat=True))
        stale.update(audio="")
        transaction.on_commit(lambda: _forget_audio(names))
    named = set(CaptionLine.objects.exclude(audio="").values_list("audio", flat=True))
    orphans = []
    for name in _stored_files(default_storage, CAPTION_AUDIO_FOLDER):
        if name not in named and default_storage.get_modified_time(name) < cutoff:
            orphans.append(name)
    _forget_audio(orphans)
    return {"lines_cleared": len(names), "orphans_deleted": len(orphans)}


def _stored_files(storage, folder: str) -> list[str]:
    if not storage.exists(folder):
        return []
    folders, files = storage.listdir(folder)
    found = [f"{folder}/{name}" for name in files]
    for sub in folders:
        found += _stored_files(storage, f"{folder}/{sub}")
    return found


def transcript_delete(*, space: Space, by) -> Transcript:
    """Delete every caption line of the Space for good, with any speech kept for them. Captions
    still in flight from the recogniser are not kept either."""
    with transaction.atomic():
        space = _host_space(space, by, "delete")
        transcript, _ = Transcript.objects.select_for_update().get_or_create(space=space)
        lines = CaptionLine.objects.filter(space=space)
        audio = list(lines.exclude(audio="").values_list("audio", flat=True))
        lines.delete()
        transaction.on_commit(lambda: _forget_audio(audio))
        transcript.deleted_at = transcript.deleted_at or timezone.now()
        transcript.published_at = None
        transcript.save(update_fields=["deleted_at", "published_at", "updated_at"])
    return transcript


# --- live captions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeakerInfo:
    name: str
    host_id: int
    space_started_at: float | None  # Unix time


def caption_event(event: CaptionEvent, info: SpeakerInfo) -> dict[str, Any]:
    """The `caption` event of docs/protocol.md. Times are seconds since the Space started;
    `utterance` (the utterance's start, in Unix milliseconds) is the same for the partials and
    the final of one utterance, so a page updates one line in place."""
    started = event.stream_started_at + event.start
    base = info.space_started_at if info.space_started_at is not None else event.stream_started_at
    return {
        "type": "caption",
        "user_id": event.speaker_id,
        "name": info.name,
        "text": event.text,
        "final": event.kind == "final",
        "utterance": round(started * 1000),
        "start": round(max(0.0, started - base), 3),
        "end": round(max(0.0, event.stream_started_at + event.end - base), 3),
    }


def wav_of(pcm: bytes) -> bytes:
    """16 kHz mono s16le PCM as a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm)
    return out.getvalue()


def pcm_of_wav(data: bytes) -> bytes:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.readframes(wav.getnframes())


def caption_line_record(
    *, space_id: int, speaker_id: int, event: dict[str, Any], audio: bytes = b""
) -> CaptionLine | None:
    """Keep a final caption (and its speech, `audio`, for the improved transcript) and publish it
    to the Space. None (and nothing published) when the host has deleted the transcript: a late
    final must not bring a line back."""
    with transaction.atomic():
        if Transcript.objects.filter(space_id=space_id, deleted_at__isnull=False).exists():
            return None
        line = CaptionLine(
            space_id=space_id,
            speaker_id=speaker_id,
            speaker_name=event["name"],
            start=event["start"],
            end=max(event["start"], event["end"]),
            text=event["text"],
        )
        if audio:
            line.audio.save(
                f"space-{space_id}-{event['utterance']}.wav", ContentFile(wav_of(audio)), save=False
            )
        line.save()
        publish_on_commit(space_id, event)
    return line


# --- the transcript improved after the end ------------------------------------------------------

IMPROVE_BEAM_SIZE = 5


def transcript_improve_later(*, space: Space) -> None:
    """Called as a Space ends (inside its transaction): queue the re-decode if there is speech kept."""
    if CaptionLine.objects.filter(space=space).exclude(audio="").exists():
        from rooms.tasks import transcript_improve as task

        space_id = space.pk
        transaction.on_commit(lambda: task.delay(space_id))


def _redecode(lines: list[CaptionLine]) -> dict[int, str]:
    """Better text for each line, by pk: Whisper's full 30 s window with beam search. Each line is
    decoded on its own: with the line before as a prompt, one mistake was copied into every
    following line. Runs outside any transaction: it takes a while."""
    from .whisper import WhisperDecoder, audio_of

    model = model_from_settings() if engine_path_from_settings() == WHISPER_ENGINE else ""
    decoder = WhisperDecoder(model)
    texts = {}
    for line in lines:
        with line.audio.open("rb") as file:
            audio = audio_of(pcm_of_wav(file.read()))
        text = decoder.final(audio, beam_size=IMPROVE_BEAM_SIZE)
        if text:
            texts[line.pk] = text
    return texts


def transcript_improve(*, space_id: int) -> int:
    """Replace the live captions of an ended Space by a better decode of their kept speech, keeping
    each line's place and times; the host is told. Returns how many lines changed. The speech is
    deleted afterwards, whatever happened to the transcript meanwhile."""
    lines = list(
        CaptionLine.objects.filter(space_id=space_id, space__state=Space.State.ENDED)
        .exclude(audio="")
        .order_by("start", "pk")
    )
    if not lines:
        return 0
    texts = _redecode(lines)
    changed = 0
    with transaction.atomic():
        space = Space.objects.select_for_update(no_key=True).select_related("host").get(pk=space_id)
        transcript, _ = Transcript.objects.select_for_update().get_or_create(space=space)
        if transcript.deleted_at is None:
            current = {line.pk: line for line in CaptionLine.objects.filter(pk__in=texts)}
            for pk, text in texts.items():
                line = current.get(pk)
                if line is not None and line.text != text:
                    line.text = text
                    changed += 1
            CaptionLine.objects.bulk_update(current.values(), ["text"])
            CaptionLine.objects.filter(pk__in=[line.pk for line in lines]).update(audio="")
            transcript.improved_at = timezone.now()
            transcript.save(update_fields=["improved_at", "updated_at"])
            notify(
                user=space.host,
                kind="transcript_improved",
                title="Transcript improved",
                body=f"The captions of “{space.title}” were checked again after it ended"
                f" ({changed} of {len(lines)} lines changed). Downloads use the improved text.",
                url=reverse("rooms:transcript", kwargs={"space_id": space.pk}),
                send_email=False,
                dedupe_key=f"transcript_improved:{space.pk}",
                space_id=space.pk,
            )
        names = [line.audio.name for line in lines]
        transaction.on_commit(lambda: _forget_audio(names))
    return changed


def _speaker_info(cache: OrderedDict, space_id: int, speaker_id: int) -> SpeakerInfo:
    key = (space_id, speaker_id)
    info = cache.get(key)
    if info is None:
        from django.contrib.auth import get_user_model

        space = Space.objects.only("host_id", "started_at").get(pk=space_id)
        user = get_user_model().objects.only("username", "display_name").filter(pk=speaker_id).first()
        info = SpeakerInfo(
            name=user.name if user is not None else "Someone",
            host_id=space.host_id,
            space_started_at=space.started_at.timestamp() if space.started_at else None,
        )
        cache[key] = info
        while len(cache) > _SPEAKER_CACHE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return info


def caption_events_publish(events: list[PoolEvent], cache: OrderedDict) -> None:
    """Turn pool events into Space events (finals are also stored). Runs in a thread."""
    for event in events:
        try:
            info = _speaker_info(cache, event.space_id, event.speaker_id)
            if isinstance(event, CaptionEvent):
                message = caption_event(event, info)
                if message["final"]:
                    caption_line_record(
                        space_id=event.space_id, speaker_id=event.speaker_id, event=message, audio=event.audio
                    )
                else:
                    publish_on_commit(event.space_id, message)
            elif isinstance(event, LaggingEvent) and event.lagging:
                publish_on_commit(
                    event.space_id,
                    {
                        "type": "captions_lagging",
                        "user_id": event.speaker_id,
                        "message": f"Captions for {info.name} are running behind; "
                        f"{event.dropped_seconds:.1f} s of speech was skipped.",
                    },
                    to_user=info.host_id,
                )
            elif isinstance(event, EngineErrorEvent):
                publish_on_commit(
                    event.space_id,
                    {
                        "type": "captions_lagging",
                        "user_id": event.speaker_id,
                        "message": f"Captions for {info.name} restarted after a problem; "
                        "a moment of speech may be missing.",
                    },
                    to_user=info.host_id,
                )
        except Space.DoesNotExist:
            continue
        except Exception:  # one bad event must not stop the captions of every Space
            logger.exception("could not publish a caption event for Space %s", event.space_id)


class CaptionRelay:
    """Carries a pool's events out of the event loop, in order, in batches."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[PoolEvent] = asyncio.Queue()
        self.cache: OrderedDict = OrderedDict()
        self.held: dict = {}  # (space, speaker) -> the newest partial not sent yet
        self.partial_sent: dict = {}  # (space, speaker) -> loop time of their last partial
        self.task = asyncio.get_running_loop().create_task(self._run())
        self._publish = database_sync_to_async(caption_events_publish, thread_sensitive=False)

    def on_event(self, event: PoolEvent) -> None:
        if isinstance(event, CaptionEvent):
            key = (event.space_id, event.speaker_id)
            if event.kind == "final":
                self.held.pop(key, None)  # the final supersedes a partial still held back
                self.partial_sent.pop(key, None)
            else:
                loop = asyncio.get_running_loop()
                wait = self.partial_sent.get(key, float("-inf")) + PARTIAL_EVERY_SECONDS - loop.time()
                if wait > 0:
                    if key not in self.held:
                        loop.call_later(wait, self._release, key)
                    self.held[key] = event  # only the newest guess is worth sending
                    return
                self.partial_sent[key] = loop.time()
        self._enqueue(event)

    def _release(self, key) -> None:
        event = self.held.pop(key, None)
        if event is not None:
            self.partial_sent[key] = asyncio.get_running_loop().time()
            self._enqueue(event)

    def _enqueue(self, event: PoolEvent) -> None:
        if self.queue.qsize() >= RELAY_BUFFER:
            self._shed()
        self.queue.put_nowait(event)

    def _shed(self) -> None:
        # Far behind (the database is away?): partials are worthless by now; finals are kept.
        kept = [e for e in self._take_all() if not (isinstance(e, CaptionEvent) and e.kind == "partial")]
        for event in kept[-RELAY_BUFFER // 2 :]:
            self.queue.put_nowait(event)

    def _take_all(self) -> list[PoolEvent]:
        events = []
        while not self.queue.empty():
            events.append(self.queue.get_nowait())
        return events

    async def _run(self) -> None:
        while True:
            events = [await self.queue.get()]
            events += self._take_all()
            try:
                await self._publish(events, self.cache)
            except Exception:
                logger.exception("caption relay failed; %d events lost", len(events))

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far has been published (tests, shutdown)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.queue.empty() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)


@dataclass(slots=True)
class _Captions:
    pool: CaptionPool
    relay: CaptionRelay


# Keyed by event loop: production has one loop per process; tests make one per test.
_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Captions] = weakref.WeakKeyDictionary()


def _captions() -> _Captions:
    loop = asyncio.get_running_loop()
    captions = _per_loop.get(loop)
    if captions is None:
        relay = CaptionRelay()
        captions = _per_loop[loop] = _Captions(CaptionPool.from_settings(on_event=relay.on_event), relay)
    return captions


def caption_pool() -> CaptionPool:
    """This process's recognition pool, created on first use (call it in the event loop)."""
    return _captions().pool


async def captions_shutdown() -> None:
    """Stop this loop's pool and relay (tests and benchmarks; a server keeps its pool for life)."""
    loop = asyncio.get_running_loop()
    captions = _per_loop.pop(loop, None)
    if captions is None:
        return
    await captions.pool.shutdown()
    await captions.relay.drain()
    captions.relay.task.cancel()
