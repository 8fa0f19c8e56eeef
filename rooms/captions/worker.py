"""The worker process: runs recognition engines for the speakers pinned to it.

Speaks a tiny protocol with `pool.CaptionPool`. Inbox (a multiprocessing
queue): ("audio", stream, offset_samples, pcm), ("close", stream), None to
stop. Outbox (a pipe): ("done", stream, audio_seconds, cpu_seconds, results,
error) after each audio message — the pool's flow control counts on it —,
("closed", stream, results, error), and ("ready",) once its first engine is
loaded. An engine that raises is replaced, so one bad stream cannot take the
others down.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import time
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue

from .engine import BYTES_PER_SECOND, SAMPLE_RATE, RecognitionEngine, Result, load_engine_class

logger = logging.getLogger(__name__)

SPARE_ENGINES = 2  # idle engines kept loaded, so a new speaker does not wait for a model to load
PARENT_CHECK_SECONDS = 1.0
WORKER_NICENESS = 10  # added to the server's own: recognition yields the core to the event loop


class _Stream:
    __slots__ = ("engine", "next_offset")

    def __init__(self, engine: RecognitionEngine, offset: int) -> None:
        self.engine = engine
        self.next_offset = offset
        engine.start_utterance(offset / SAMPLE_RATE)


class Worker:
    def __init__(self, engine_path: str, model: str = "") -> None:
        self.engine_class = load_engine_class(engine_path)
        self.model = model
        self.streams: dict[int, _Stream] = {}
        self.spares: list[RecognitionEngine] = [self._new_engine()]

    def _new_engine(self) -> RecognitionEngine:
        return self.engine_class(model=self.model)

    def _engine(self) -> RecognitionEngine:
        return self.spares.pop() if self.spares else self._new_engine()

    def audio(self, stream_id: int, offset: int, pcm: bytes) -> tuple[list[Result], str | None]:
        results: list[Result] = []
        stream = self.streams.get(stream_id)
        try:
            if stream is None:
                stream = self.streams[stream_id] = _Stream(self._engine(), offset)
            elif offset != stream.next_offset:
                # The pool dropped audio to catch up: close the utterance cut by the gap.
                final = stream.engine.end_utterance()
                if final is not None:
                    results.append(final)
                stream.engine.start_utterance(offset / SAMPLE_RATE)
            stream.next_offset = offset + len(pcm) // 2
            results.extend(stream.engine.feed(pcm))
        except Exception as exc:
            logger.exception("captions engine failed on stream %s; replacing it", stream_id)
            self.streams.pop(stream_id, None)
            try:
                self.streams[stream_id] = _Stream(self._new_engine(), offset + len(pcm) // 2)
            except Exception:
                logger.exception("captions engine could not be restarted; will retry on the next audio")
            return results, f"{type(exc).__name__}: {exc}"
        return results, None

    def close(self, stream_id: int) -> tuple[list[Result], str | None]:
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return [], None
        try:
            final = stream.engine.end_utterance()
        except Exception as exc:
            logger.exception("captions engine failed closing stream %s", stream_id)
            return [], f"{type(exc).__name__}: {exc}"
        if len(self.spares) < SPARE_ENGINES:
            self.spares.append(stream.engine)
        return ([final] if final is not None else []), None


def worker_main(engine_path: str, model: str, inbox: Queue, outbox: Connection, parent_pid: int) -> None:
    # Ctrl-C reaches the whole process group; the parent shuts workers down in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A caption can wait a few milliseconds for the core; the Space's events and audio cannot.
    # Recognition runs only on CPU time nothing else wants (SCHED_IDLE, inherited by the decoder's
    # threads), so the event loop and the listeners' sockets never wait for it; where that policy
    # is missing, it runs below the server's priority.
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.nice(WORKER_NICENESS)
    worker = Worker(engine_path, model)
    outbox.send(("ready",))
    while True:
        try:
            message = inbox.get(timeout=PARENT_CHECK_SECONDS)
        except queue.Empty:
            if os.getppid() != parent_pid:  # orphaned: the server died without shutting us down
                return
            continue
        if message is None:
            return
        if message[0] == "audio":
            _, stream_id, offset, pcm = message
            started = time.process_time()
            results, error = worker.audio(stream_id, offset, pcm)
            cpu = time.process_time() - started
            outbox.send(("done", stream_id, len(pcm) / BYTES_PER_SECOND, cpu, results, error))
        elif message[0] == "close":
            results, error = worker.close(message[1])
            outbox.send(("closed", message[1], results, error))
