"""Captions as the Space sees them: live `caption` events, stored lines, and the host's transcript.

Write side (STYLE.md §2): `caption_line_record` keeps a final caption and publishes it;
`transcript_publish`, `transcript_unpublish` and `transcript_delete` are the host's choices after
the Space ends.

The glue: one `CaptionPool` per process (per event loop), made on first use by `caption_pool()`.
Its events come back in the event loop and are queued to one relay task (a speaker's partials at
most every PARTIAL_EVERY_SECONDS), which hands them in batches to a thread: recognition never
runs in the loop, and neither does the database. Order is kept: a speaker's partials and final
reach listeners in the order the recogniser made them.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.db import transaction
from django.utils import timezone

from rooms.events import publish_on_commit
from rooms.models import CaptionLine, Space, Transcript
from rooms.services import NotLive, RoomError, RoomForbidden

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
    space = Space.objects.select_for_update().get(pk=space.pk)
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


def transcript_delete(*, space: Space, by) -> Transcript:
    """Delete every caption line of the Space for good. Captions still in flight from the
    recogniser are not kept either."""
    with transaction.atomic():
        space = _host_space(space, by, "delete")
        transcript, _ = Transcript.objects.select_for_update().get_or_create(space=space)
        CaptionLine.objects.filter(space=space).delete()
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


def caption_line_record(*, space_id: int, speaker_id: int, event: dict[str, Any]) -> CaptionLine | None:
    """Keep a final caption and publish it to the Space. None (and nothing published) when the
    host has deleted the transcript: a late final must not bring a line back."""
    with transaction.atomic():
        if Transcript.objects.filter(space_id=space_id, deleted_at__isnull=False).exists():
            return None
        line = CaptionLine.objects.create(
            space_id=space_id,
            speaker_id=speaker_id,
            speaker_name=event["name"],
            start=event["start"],
            end=max(event["start"], event["end"]),
            text=event["text"],
        )
        publish_on_commit(space_id, event)
    return line


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
                    caption_line_record(space_id=event.space_id, speaker_id=event.speaker_id, event=message)
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
