"""A finished transcript as WebVTT (for <track> and downloads) and as plain text."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CaptionLine:
    speaker: str
    start: float  # seconds since the Space started
    end: float
    text: str


_WHITESPACE = re.compile(r"\s+")


def _one_line(text: str) -> str:
    # A blank line would end the cue early; captions are one line each anyway.
    return _WHITESPACE.sub(" ", text).strip()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _split(seconds: float) -> tuple[int, int, int, int]:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return hours, minutes, secs, millis


def vtt_timestamp(seconds: float) -> str:
    hours, minutes, secs, millis = _split(seconds)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def clock_timestamp(seconds: float) -> str:
    hours, minutes, secs, _ = _split(int(max(0.0, seconds)))
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def render_webvtt(lines: Iterable[CaptionLine]) -> str:
    cues = ["WEBVTT"]
    for line in lines:
        start = max(0.0, line.start)
        end = max(start, line.end)
        voice = _escape(_one_line(line.speaker))
        cues.append(
            f"{vtt_timestamp(start)} --> {vtt_timestamp(end)}\n<v {voice}>{_escape(_one_line(line.text))}</v>"
        )
    return "\n\n".join(cues) + "\n"


def render_plain_text(lines: Iterable[CaptionLine]) -> str:
    return "".join(
        f"[{clock_timestamp(line.start)}] {_one_line(line.speaker)}: {_one_line(line.text)}\n"
        for line in lines
    )
