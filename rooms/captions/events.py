"""What a `CaptionPool` reports, in the event loop, for the consumer to forward.

`as_dict()` gives a JSON-ready dict whose "type" names the event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class CaptionEvent:
    """Recognised speech. A "partial" replaces the previous partial of the same
    speaker; a "final" replaces it for good. Times are seconds of audio since the
    speaker's stream start; `stream_started_at` is that start as a Unix time."""

    kind: Literal["partial", "final"]
    space_id: Any
    speaker_id: Any
    text: str
    start: float
    end: float
    stream_started_at: float
    audio: bytes = field(default=b"", repr=False)  # a final's speech, when the engine keeps it
    type: str = field(default="caption", init=False)

    def as_dict(self) -> dict[str, Any]:
        event = asdict(self)
        del event["audio"]
        return event


@dataclass(frozen=True, slots=True)
class LaggingEvent:
    """Recognition fell behind and the oldest audio was dropped (`lagging=True`, at most once
    per pool.LAG_REPORT_SECONDS per speaker, across mute and unmute), or it caught up again
    (`lagging=False`)."""

    space_id: Any
    speaker_id: Any
    lagging: bool
    dropped_seconds: float  # since the previous report
    total_dropped_seconds: float  # since the stream started
    type: str = field(default="lagging", init=False)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class EngineErrorEvent:
    """The speaker's recogniser failed and was restarted; a moment of speech is lost."""

    space_id: Any
    speaker_id: Any
    message: str
    type: str = field(default="engine_error", init=False)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PoolEvent = CaptionEvent | LaggingEvent | EngineErrorEvent
