"""A pool of recognition worker processes serving every speaker of every Space.

Audio is handed over with `await pool.submit(...)`, which only queues it and
returns at once; recognition never runs on the event loop. Each speaker is
pinned to one worker process and has a queue bounded in seconds of audio on
this side; when the worker falls behind, the oldest audio is dropped and a
`LaggingEvent` says so. Results come back as events, in the event loop, via
`on_event` and/or `async for event in pool.events()`.

Flow control: each worker holds at most MAX_IN_FLIGHT_SECONDS of audio it has
not acknowledged, so a backlog waits here, where it can be dropped, and not in
a pipe, where it cannot.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable
from multiprocessing.connection import wait
from typing import Any

from .engine import (
    BYTES_PER_SECOND,
    DEFAULT_ENGINE,
    Final,
    Result,
    engine_path_from_settings,
    model_from_settings,
)
from .events import CaptionEvent, EngineErrorEvent, LaggingEvent, PoolEvent
from .worker import worker_main

logger = logging.getLogger(__name__)

MAX_IN_FLIGHT_SECONDS = 1.0
MAX_BATCH_SECONDS = 0.5
# The host is told a speaker's captions are behind at most this often, however long it lasts.
LAG_REPORT_SECONDS = 30.0
EVENT_BUFFER = 10_000  # per events() subscriber; the oldest events go first if nobody reads
_READER_POLL_SECONDS = 0.2
MAX_IN_FLIGHT_BYTES = int(MAX_IN_FLIGHT_SECONDS * BYTES_PER_SECOND)


class _Stream:
    """One speaker's audio since their stream started (first submit after open or close)."""

    def __init__(self, stream_id: int, space_id: Hashable, speaker_id: Hashable, worker: _Worker) -> None:
        self.id = stream_id
        self.space_id = space_id
        self.speaker_id = speaker_id
        self.worker = worker
        self.started_at = time.time()
        self.queue: deque[tuple[int, bytes]] = deque()  # (offset in samples, pcm), contiguous
        self.queued_bytes = 0
        self.next_offset = 0
        self.closing = False
        self.lagging = False
        self.dropped_unreported = 0.0
        self.total_dropped = 0.0
        self.last_lag_report = float("-inf")
        self.audio_seconds = 0.0
        self.cpu_seconds = 0.0


class _Worker:
    def __init__(self, index: int, process: Any, inbox: Any, conn: Any) -> None:
        self.index = index
        self.process = process
        self.inbox = inbox
        self.conn = conn
        self.in_flight = 0  # bytes handed over and not yet acknowledged
        self.ready = asyncio.Event()  # its recogniser is loaded
        self.streams: deque[_Stream] = deque()
        self.dead = False  # set in the loop once its exit is handled
        self.exit_reported = False  # set by the reader thread


class _Subscription:
    def __init__(self, pool: CaptionPool) -> None:
        self._pool = pool
        self.queue: asyncio.Queue[PoolEvent | None] = asyncio.Queue(maxsize=EVENT_BUFFER)

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> PoolEvent:
        event = await self.queue.get()
        if event is None:
            self.close()
            raise StopAsyncIteration
        return event

    def close(self) -> None:
        if self in self._pool._subscribers:
            self._pool._subscribers.remove(self)


def _stop_processes(processes: list[Any]) -> None:
    for process in processes:
        if process.is_alive():
            process.kill()


class CaptionPool:
    def __init__(
        self,
        *,
        engine: str = DEFAULT_ENGINE,
        model: str = "",
        workers: int = 2,
        max_queue_seconds: float = 3.0,
        on_event: Callable[[PoolEvent], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a caption pool needs at least one worker process")
        if max_queue_seconds < 0.1:
            raise ValueError("max_queue_seconds must hold at least one 100 ms frame")
        self.engine = engine
        self.model = model
        self.size = workers
        self.max_queue_seconds = max_queue_seconds
        self.on_event = on_event
        self._max_queue_bytes = int(max_queue_seconds * BYTES_PER_SECOND)
        self._context = multiprocessing.get_context("spawn")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[_Worker] = []
        self._processes: list[Any] = []  # every live worker process, for the finalizer
        self._streams: dict[tuple[Hashable, Hashable], _Stream] = {}
        self._by_id: dict[int, _Stream] = {}
        self._recent_lag: dict[tuple[Hashable, Hashable], float] = {}  # closed streams' last lag notice
        self._ids = itertools.count(1)
        self._subscribers: list[_Subscription] = []
        self._reader: threading.Thread | None = None
        self._closed = False
        self.totals = {
            "audio_seconds": 0.0,
            "cpu_seconds": 0.0,
            "dropped_seconds": 0.0,
            "engine_errors": 0,
            "worker_restarts": 0,
        }
        weakref.finalize(self, _stop_processes, self._processes)

    @classmethod
    def from_settings(cls, **overrides: Any) -> CaptionPool:
        from django.conf import settings

        overrides.setdefault("engine", engine_path_from_settings())
        overrides.setdefault("model", model_from_settings())
        overrides.setdefault("workers", settings.SPACES_CAPTIONS_WORKERS)
        overrides.setdefault("max_queue_seconds", settings.SPACES_CAPTIONS_QUEUE_SECONDS)
        return cls(**overrides)

    # --- public API ---------------------------------------------------------

    async def start(self) -> None:
        """Start the worker processes (submit does it on first use)."""
        if self._closed:
            raise RuntimeError("this caption pool has been shut down")
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._workers = [self._spawn(index) for index in range(self.size)]
        self._reader = threading.Thread(target=self._read_results, name="captions-pool-reader", daemon=True)
        self._reader.start()

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Start the pool and wait until every worker has loaded its recogniser (a Whisper model
        takes a few seconds; audio submitted meanwhile waits in the bounded queues)."""
        await self.start()
        async with asyncio.timeout(timeout):
            for worker in list(self._workers):
                await worker.ready.wait()

    async def submit(self, space_id: Hashable, speaker_id: Hashable, pcm: bytes) -> None:
        """Queue 16 kHz mono s16le audio of one speaker; returns without waiting for recognition."""
        if self._loop is None:
            await self.start()
        if self._closed:
            raise RuntimeError("this caption pool has been shut down")
        if len(pcm) % 2:
            raise ValueError("PCM must be whole 16-bit samples (an even number of bytes)")
        if not pcm:
            return
        stream = self._streams.get((space_id, speaker_id)) or self._open(space_id, speaker_id)
        stream.queue.append((stream.next_offset, bytes(pcm)))
        stream.next_offset += len(pcm) // 2
        stream.queued_bytes += len(pcm)
        dropped = 0
        while stream.queued_bytes > self._max_queue_bytes and len(stream.queue) > 1:
            _, oldest = stream.queue.popleft()
            stream.queued_bytes -= len(oldest)
            dropped += len(oldest)
        if dropped:
            self._note_dropped(stream, dropped / BYTES_PER_SECOND)
        self._pump(stream.worker)

    def close_speaker(self, space_id: Hashable, speaker_id: Hashable) -> None:
        """End the speaker's stream (muted, left the stage): queued audio is still
        recognised and the utterance in progress becomes a final. The next submit
        starts a new stream at time zero."""
        stream = self._streams.pop((space_id, speaker_id), None)
        if stream is None:
            return
        now = self._loop.time()
        self._recent_lag = {k: t for k, t in self._recent_lag.items() if now - t < LAG_REPORT_SECONDS}
        if now - stream.last_lag_report < LAG_REPORT_SECONDS:
            self._recent_lag[(space_id, speaker_id)] = stream.last_lag_report
        stream.closing = True
        self._pump(stream.worker)

    def events(self) -> _Subscription:
        """An async iterator over every event from now on; it ends when the pool shuts down."""
        subscription = _Subscription(self)
        if self._closed:
            subscription.queue.put_nowait(None)
        else:
            self._subscribers.append(subscription)
        return subscription

    def stats(self) -> dict[str, Any]:
        return {
            **self.totals,
            "workers": sum(1 for worker in self._workers if not worker.dead),
            "speakers": [
                {
                    "space_id": stream.space_id,
                    "speaker_id": stream.speaker_id,
                    "worker": stream.worker.index,
                    "audio_seconds": round(stream.audio_seconds, 3),
                    "cpu_seconds": round(stream.cpu_seconds, 3),
                    "queued_seconds": stream.queued_bytes / BYTES_PER_SECOND,
                    "dropped_seconds": round(stream.total_dropped, 3),
                }
                for stream in self._streams.values()
            ],
        }

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the workers (killing any that do not stop within `timeout`); queued audio is discarded."""
        if self._closed:
            return
        self._closed = True
        for subscription in list(self._subscribers):
            self._deliver(subscription, None)
        self._subscribers.clear()
        if self._loop is None:
            return
        for worker in self._workers:
            try:
                worker.inbox.put(None)
            except (OSError, ValueError):
                pass
        await asyncio.to_thread(self._stop_all, timeout)

    # --- streams and flow control (event loop only) -------------------------

    def _open(self, space_id: Hashable, speaker_id: Hashable) -> _Stream:
        worker = min((w for w in self._workers if not w.dead), key=lambda w: len(w.streams))
        stream = _Stream(next(self._ids), space_id, speaker_id, worker)
        # Muting and unmuting starts a new stream; the host still hears of lag only once per period.
        stream.last_lag_report = self._recent_lag.pop((space_id, speaker_id), float("-inf"))
        self._streams[(space_id, speaker_id)] = stream
        self._by_id[stream.id] = stream
        worker.streams.append(stream)
        return stream

    def _pump(self, worker: _Worker) -> None:
        """Hand queued audio to the worker, round-robin over its speakers, within its in-flight budget."""
        if worker.dead or self._closed:
            return
        streams = worker.streams
        idle = 0
        while streams and idle < len(streams) and worker.in_flight < MAX_IN_FLIGHT_BYTES:
            stream = streams[0]
            streams.rotate(-1)
            if stream.queue:
                offset, pcm = self._take_batch(stream)
                worker.inbox.put(("audio", stream.id, offset, pcm))
                worker.in_flight += len(pcm)
                idle = 0
            elif stream.closing:
                worker.inbox.put(("close", stream.id))
                streams.remove(stream)
                idle = 0
            else:
                idle += 1

    @staticmethod
    def _take_batch(stream: _Stream) -> tuple[int, bytes]:
        offset, first = stream.queue.popleft()
        chunks = [first]
        size = len(first)
        limit = int(MAX_BATCH_SECONDS * BYTES_PER_SECOND)
        while stream.queue and size + len(stream.queue[0][1]) <= limit:
            chunk = stream.queue.popleft()[1]
            chunks.append(chunk)
            size += len(chunk)
        stream.queued_bytes -= size
        return offset, b"".join(chunks)

    def _note_dropped(self, stream: _Stream, seconds: float) -> None:
        stream.lagging = True
        stream.dropped_unreported += seconds
        stream.total_dropped += seconds
        self.totals["dropped_seconds"] += seconds
        if self._loop.time() - stream.last_lag_report >= LAG_REPORT_SECONDS:
            self._report_lag(stream, lagging=True)

    def _report_lag(self, stream: _Stream, *, lagging: bool) -> None:
        stream.lagging = lagging
        if lagging:
            stream.last_lag_report = self._loop.time()
        dropped, stream.dropped_unreported = stream.dropped_unreported, 0.0
        self._emit(
            LaggingEvent(
                stream.space_id, stream.speaker_id, lagging, round(dropped, 3), round(stream.total_dropped, 3)
            )
        )

    # --- results (event loop only) ------------------------------------------

    def _on_message(self, worker: _Worker, message: tuple) -> None:
        if self._closed:
            return
        if message[0] == "ready":
            worker.ready.set()
        elif message[0] == "done":
            _, stream_id, seconds, cpu, results, error = message
            worker.in_flight = max(0, worker.in_flight - round(seconds * BYTES_PER_SECOND))
            self.totals["audio_seconds"] += seconds
            self.totals["cpu_seconds"] += cpu
            stream = self._by_id.get(stream_id)
            if stream is not None:
                stream.audio_seconds += seconds
                stream.cpu_seconds += cpu
                self._emit_results(stream, results, error)
                if stream.lagging and not stream.queue:
                    self._report_lag(stream, lagging=False)
            self._pump(worker)
        elif message[0] == "closed":
            _, stream_id, results, error = message
            stream = self._by_id.pop(stream_id, None)
            if stream is not None:
                self._emit_results(stream, results, error)

    def _emit_results(self, stream: _Stream, results: list[Result], error: str | None) -> None:
        for result in results:
            kind = "final" if isinstance(result, Final) else "partial"
            self._emit(
                CaptionEvent(
                    kind,
                    stream.space_id,
                    stream.speaker_id,
                    result.text,
                    result.start,
                    result.end,
                    stream.started_at,
                    result.audio if isinstance(result, Final) else b"",
                )
            )
        if error is not None:
            self.totals["engine_errors"] += 1
            self._emit(
                EngineErrorEvent(
                    stream.space_id, stream.speaker_id, f"Captions restarted after an error: {error}"
                )
            )

    def _emit(self, event: PoolEvent) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                logger.exception("captions on_event callback failed")
        for subscription in self._subscribers:
            self._deliver(subscription, event)

    @staticmethod
    def _deliver(subscription: _Subscription, event: PoolEvent | None) -> None:
        if subscription.queue.full():
            subscription.queue.get_nowait()
        subscription.queue.put_nowait(event)

    # --- worker processes ---------------------------------------------------

    def _spawn(self, index: int) -> _Worker:
        inbox = self._context.Queue()
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=worker_main,
            args=(self.engine, self.model, inbox, sender, os.getpid()),
            name=f"captions-worker-{index}",
            daemon=True,
        )
        process.start()
        sender.close()
        self._processes.append(process)
        return _Worker(index, process, inbox, receiver)

    def _on_worker_exit(self, worker: _Worker) -> None:
        if self._closed or worker.dead:
            return
        worker.dead = True
        logger.error(
            "captions worker %s exited with code %s; restarting it", worker.index, worker.process.exitcode
        )
        self.totals["worker_restarts"] += 1
        worker.inbox.cancel_join_thread()
        worker.inbox.close()
        if worker.process in self._processes:
            self._processes.remove(worker.process)
        replacement = self._spawn(worker.index)
        self._workers[worker.index] = replacement
        for stream in list(self._by_id.values()):
            if stream.worker is worker and stream.closing and stream not in worker.streams:
                del self._by_id[stream.id]  # its close was lost with the process; nothing to flush
        for stream in worker.streams:
            stream.worker = replacement
            replacement.streams.append(stream)
            self._emit(
                EngineErrorEvent(
                    stream.space_id,
                    stream.speaker_id,
                    "Captions restarted after the recogniser process stopped; a few seconds may be missing.",
                )
            )
        self._pump(replacement)

    def _read_results(self) -> None:
        """Reader thread: forwards worker messages and exits into the event loop."""
        loop = self._loop
        while not self._closed:
            workers = [w for w in self._workers if not w.exit_reported]
            conns = {w.conn: w for w in workers}
            sentinels = {w.process.sentinel: w for w in workers}
            try:
                ready = wait([*conns, *sentinels], timeout=_READER_POLL_SECONDS)
            except OSError:
                continue
            try:
                for handle in ready:
                    if handle in conns:
                        self._forward(loop, conns[handle])
                for handle in ready:
                    worker = sentinels.get(handle)
                    if worker is not None and not self._closed:
                        while self._forward(loop, worker):
                            pass
                        worker.exit_reported = True
                        worker.conn.close()
                        loop.call_soon_threadsafe(self._on_worker_exit, worker)
            except RuntimeError:  # the event loop is closed: nobody is listening any more
                return

    def _forward(self, loop: asyncio.AbstractEventLoop, worker: _Worker) -> bool:
        try:
            if worker.conn.closed or not worker.conn.poll():
                return False
            message = worker.conn.recv()
        except (EOFError, OSError):
            return False
        loop.call_soon_threadsafe(self._on_message, worker, message)
        return True

    def _stop_all(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(1.0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1.0)
        if self._reader is not None:
            self._reader.join(2 * _READER_POLL_SECONDS + 1.0)
        for worker in self._workers:
            worker.inbox.cancel_join_thread()
            worker.inbox.close()
            if not worker.conn.closed:
                worker.conn.close()
        self._processes.clear()
