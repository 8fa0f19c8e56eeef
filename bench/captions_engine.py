"""Captions recogniser benchmark: real-time factor through the pool, and word error rate.

    .venv/bin/python bench/captions_engine.py [--workers 2] [--engines whisper,pocketsphinx] [--model DIR]

Prints one JSON line, with the figures of each engine measured in the same run. RTF = worker CPU
seconds spent recognising / seconds of audio (per speaker; < 0.5 is the target). Audio is
submitted all at once into an unbounded queue, so the pool works flat out and nothing is dropped;
wall RTF is elapsed time / audio seconds of one speaker. Speech is ~10 espeak-ng sentences with a
quiet noise floor (as from a real microphone), a second of quiet between them. WER is word-level
Levenshtein distance / reference words, after both texts go through Whisper's English normaliser
(the whisper-normalizer package), so "10:30" against "ten thirty" or "let's" against "let us"
counts as recognition, not as spelling.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import functools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rooms.captions.engine import (  # noqa: E402
    BYTES_PER_SECOND,
    DEFAULT_ENGINE,
    POCKETSPHINX_ENGINE,
    WHISPER_ENGINE,
)
from rooms.captions.events import CaptionEvent  # noqa: E402
from rooms.captions.pool import CaptionPool  # noqa: E402

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "please call me when you get home",
    "we will meet at the station tomorrow morning",
    "this is a good day",
    "can you hear me",
    "good morning everyone",
    "it is time to go",
    "i like to read books",
    "turn left at the next street",
    "let us start the meeting now",
]
FRAME = 3200  # 100 ms, as browsers send it


def speak(text: str, workdir: Path) -> bytes:
    wav = workdir / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "-s", "150", "-v", "en-us", text], check=True)
    return subprocess.run(
        ["sox", str(wav), "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "raw", "-"],
        check=True,
        capture_output=True,
    ).stdout


def recording(sentences: list[str], workdir: Path, seed: int) -> bytes:
    quiet = bytes(BYTES_PER_SECOND)
    samples = array.array("h", quiet + b"".join(speak(s, workdir) + quiet for s in sentences))
    rng = random.Random(seed)
    for i, value in enumerate(samples):
        samples[i] = max(-32768, min(32767, value + int(rng.gauss(0, 100))))
    pcm = samples.tobytes()
    return pcm[: len(pcm) - len(pcm) % FRAME]


@functools.cache
def _normaliser():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalise(text: str) -> list[str]:
    return _normaliser()(text).split()


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1]


async def run(engine: str, pool_workers: int, recordings: list[bytes], model: str = "") -> dict:
    pool = CaptionPool(engine=engine, model=model, workers=pool_workers, max_queue_seconds=3600)
    await pool.wait_ready()
    finals: dict[int, list[CaptionEvent]] = {i: [] for i in range(len(recordings))}
    pool.on_event = lambda e: finals[e.speaker_id].append(e) if getattr(e, "kind", "") == "final" else None
    total_audio = sum(len(pcm) for pcm in recordings) / BYTES_PER_SECOND
    started = time.monotonic()
    for offset in range(0, max(map(len, recordings)), FRAME):
        for speaker, pcm in enumerate(recordings):
            if offset < len(pcm):
                await pool.submit("bench", speaker, pcm[offset : offset + FRAME])
    while pool.totals["audio_seconds"] < total_audio - 1e-6:
        await asyncio.sleep(0.02)
    wall = time.monotonic() - started
    speakers = pool.stats()["speakers"]
    await asyncio.sleep(0.1)  # let the last events land
    await pool.shutdown()
    return {
        "rtf": [round(s["cpu_seconds"] / s["audio_seconds"], 3) for s in speakers],
        "wall_rtf": round(wall / (len(recordings[0]) / BYTES_PER_SECOND), 3),
        "dropped_seconds": pool.totals["dropped_seconds"],
        "finals": finals,
    }


async def measure(engine: str, workers: int, recordings: list[bytes], model: str = "") -> dict:
    one = await run(engine, workers, recordings[:1], model)
    three = await run(engine, workers, recordings, model)
    reference = [w for s in SENTENCES for w in normalise(s)]
    hypothesis = [w for e in one["finals"][0] for w in normalise(e.text)]
    errors = word_errors(reference, hypothesis)
    rtf_3 = three["rtf"]
    return {
        "rtf_1_speaker": one["rtf"][0],
        "rtf_3_speakers": rtf_3,
        "rtf_3_speakers_max": max(rtf_3),
        "wall_rtf_1_speaker": one["wall_rtf"],
        "wall_rtf_3_speakers": three["wall_rtf"],
        "meets_rtf_target": max([one["rtf"][0], *rtf_3]) < 0.5,
        "word_errors": errors,
        "wer": round(errors / len(reference), 3),
        "utterances": len(one["finals"][0]),
        "dropped_seconds": one["dropped_seconds"] + three["dropped_seconds"],
    }


ENGINES = {"whisper": WHISPER_ENGINE, "pocketsphinx": POCKETSPHINX_ENGINE}


async def main(workers: int, engines: list[str], model: str = "") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        recordings = [recording(SENTENCES[i:] + SENTENCES[:i], Path(tmp), seed=i) for i in range(3)]
    out = {
        "bench": "captions_engine",
        "default_engine": DEFAULT_ENGINE,
        "workers": workers,
        "cpus": os.cpu_count(),
        "audio_seconds_per_speaker": round(len(recordings[0]) / BYTES_PER_SECOND, 2),
        "sentences": len(SENTENCES),
        "reference_words": sum(len(normalise(s)) for s in SENTENCES),
        "target_rtf": 0.5,
        "target_wer": 0.12,
        "whisper_model": model or "packaged tiny.en",
    }
    for name in engines:
        out[name] = await measure(ENGINES[name], workers, recordings, model if name == "whisper" else "")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--engines", default="whisper,pocketsphinx", help="comma-separated: whisper, pocketsphinx"
    )
    parser.add_argument(
        "--model", default="", help="a faster-whisper model folder (default: packaged tiny.en)"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.workers, args.engines.split(","), args.model))))
