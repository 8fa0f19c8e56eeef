"""Helpers for the recording tests: real Opus-in-WebM capture bytes (as a browser's MediaRecorder
makes them), chunked, and a Space recorded through the services."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np

from rooms.recordings import service
from rooms.recordings.processing import RATE, _decode, encode


def tone(seconds: float, hz: float, amplitude: float = 0.2) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def webm_bytes(samples: np.ndarray) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "capture.webm"
        encode(samples, path, fmt="webm", codec="libopus", bit_rate=32_000)
        return path.read_bytes()


def chunks_of(data: bytes, n: int) -> list[bytes]:
    size = -(-len(data) // n)
    return [data[i : i + size] for i in range(0, len(data), size)]


def upload(space, host, data: bytes, *, session: str = "sessionA1", pieces: int = 4) -> None:
    for seq, piece in enumerate(chunks_of(data, pieces)):
        service.recording_chunk_save(space=space, by=host, session=session, seq=seq, data=piece)


def decode_file(data: bytes) -> np.ndarray:
    return _decode(io.BytesIO(data))


def strength(samples: np.ndarray, hz: float) -> float:
    """The share of the signal's energy within 10 Hz of `hz`."""
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
    band = spectrum[(freqs > hz - 10) & (freqs < hz + 10)].sum()
    return float(band / (spectrum.sum() + 1e-12))


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


def recording_media(settings, tmp_path: Path) -> dict[str, str]:
    """Media and Janus recording folders of this test's own, set here and returned as the
    environment a server started by the test needs (no Janus unless the test adds one)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.JANUS_RECORDING_DIR = str(tmp_path / "janus-recordings")
    return {
        "JANUS_URL": "",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "JANUS_RECORDING_DIR": settings.JANUS_RECORDING_DIR,
    }
