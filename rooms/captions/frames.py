"""What a caption audio frame from the browser must look like, and how fast frames may come.

A frame is one binary websocket message: 16 kHz, mono, signed 16-bit
little-endian PCM, exactly one of ACCEPTED_FRAME_MS long (the client should
send RECOMMENDED_FRAME_MS). Anything else is refused with a `FrameError`
whose `code` is stable for clients and whose `message` is for people.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from accounts.ratelimit import Limit, TokenBucket

from .engine import BYTES_PER_SAMPLE, BYTES_PER_SECOND, SAMPLE_RATE

ACCEPTED_FRAME_MS = (20, 40, 60, 80, 100)
RECOMMENDED_FRAME_MS = 100
ACCEPTED_FRAME_BYTES = frozenset(ms * BYTES_PER_SECOND // 1000 for ms in ACCEPTED_FRAME_MS)
MAX_FRAME_BYTES = max(ACCEPTED_FRAME_BYTES)  # 3200 bytes = 100 ms

# A speaker may send audio at up to 1.5x real time on average (clock skew,
# a tab catching up after a stall) and a burst of one second at once.
FLOOD_RATE = 1.5
FLOOD_BURST_SECONDS = 1.0

NOT_BINARY = "not_binary"
EMPTY = "empty"
ODD_LENGTH = "odd_length"
TOO_LARGE = "too_large"
BAD_SIZE = "bad_size"
FLOOD = "flood"

_accepted = ", ".join(f"{ms} ms ({ms * BYTES_PER_SECOND // 1000} bytes)" for ms in ACCEPTED_FRAME_MS)


class FrameError(ValueError):
    """An audio frame was refused; `code` is for clients, `message` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def frame_seconds(frame: bytes) -> float:
    return len(frame) / BYTES_PER_SECOND


def validate_frame(frame: object) -> bytes:
    """Return `frame` if it is an acceptable audio frame, else raise FrameError."""
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise FrameError(NOT_BINARY, "Caption audio must be sent as binary websocket messages, not text.")
    size = len(frame)
    if size == 0:
        raise FrameError(EMPTY, "The audio frame was empty; send 16-bit PCM samples.")
    if size % BYTES_PER_SAMPLE:
        raise FrameError(
            ODD_LENGTH,
            f"The audio frame has {size} bytes, which is not a whole number of 16-bit samples.",
        )
    if size > MAX_FRAME_BYTES:
        raise FrameError(
            TOO_LARGE,
            f"The audio frame has {size} bytes; the largest accepted is {MAX_FRAME_BYTES} bytes "
            f"({max(ACCEPTED_FRAME_MS)} ms). Split it into smaller frames.",
        )
    if size not in ACCEPTED_FRAME_BYTES:
        raise FrameError(
            BAD_SIZE,
            f"The audio frame is {size * 1000 // BYTES_PER_SECOND} ms long ({size} bytes); "
            f"send {SAMPLE_RATE} Hz mono 16-bit frames of {_accepted}.",
        )
    return bytes(frame)


class FloodLimiter:
    """The speaker's audio budget: a token bucket (accounts.ratelimit) counted in seconds of audio,
    refilled at `rate` per wall-clock second, `burst_seconds` deep.

    Keep one per speaker connection. A refused frame costs nothing, so a
    client that slows down is served again at once.
    """

    def __init__(
        self,
        *,
        rate: float = FLOOD_RATE,
        burst_seconds: float = FLOOD_BURST_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.bucket = TokenBucket(Limit(burst_seconds, burst_seconds / rate), clock=clock)

    def check(self, frame: bytes) -> None:
        """Take `frame`'s duration from the bucket, or raise FrameError(FLOOD)."""
        if not self.bucket.take(frame_seconds(frame)):
            raise FrameError(
                FLOOD,
                f"Audio is arriving faster than {self.rate:g}x real time; this frame was dropped. "
                "Send frames as they are recorded.",
            )


def accept_frame(frame: object, limiter: FloodLimiter) -> bytes:
    """Validate one incoming frame and charge it to the speaker's limiter."""
    pcm = validate_frame(frame)
    limiter.check(pcm)
    return pcm
