"""Tools for audio tests: tone WAVs for Chromium's fake microphone, and listening in the page.

A fake microphone is per browser *process* (``--use-file-for-fake-audio-capture``), so each
speaker gets a browser of their own with their own tone; listeners can share one.

What a page hears is measured in the page: every ``<audio data-peer>`` sink that audio.js
creates is fed into one WebAudio ``AnalyserNode`` and its spectrum is averaged over a short
window. ``level_at`` reads the dB at a frequency, ``tone_heard`` compares it with the noise
floor of the same spectrum.
"""

from __future__ import annotations

import cmath
import math
import struct
import wave
from pathlib import Path

from tests.conftest import CHROMIUM, CHROMIUM_ARGS

RATE = 48_000
FAKE_MEDIA_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    # Plain host candidates (no mDNS names) so browsers on one machine reach each other.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
# A tone counts as heard when it stands this far above the spectrum's median and above an
# absolute level: a heard tone measures about -40 dB here, codec residue near a silenced one
# below -100 dB.
HEARD_OVER_FLOOR_DB = 20.0
HEARD_MIN_DB = -75.0


def write_tone_wav(path: Path, frequency: float, *, seconds: float = 3.0, amplitude: float = 0.5) -> Path:
    """A mono 16-bit 48 kHz sine. Chromium loops the file, so a whole number of cycles per loop
    keeps it click-free."""
    cycles = max(1, round(frequency * seconds))
    frames = round(cycles * RATE / frequency)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        samples = (
            int(32767 * amplitude * math.sin(2 * math.pi * frequency * i / RATE)) for i in range(frames)
        )
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


def goertzel_power(samples: list[float], frequency: float, rate: int = RATE) -> float:
    """Power of one frequency in `samples` (a single DFT bin, without numpy)."""
    n = len(samples)
    k = frequency * n / rate
    total = sum(x * cmath.exp(-2j * math.pi * k * i / n) for i, x in enumerate(samples))
    return abs(total) ** 2 / n


def read_wav(path: Path) -> list[float]:
    with wave.open(str(path), "rb") as src:
        raw = src.readframes(src.getnframes())
    return [s / 32768 for (s,) in struct.iter_unpack("<h", raw)]


def launch_browser(
    playwright, *, wav: Path | None = None, extra_args: list[str] | None = None, autoplay: bool = True
):
    """Chromium with a fake microphone playing `wav`; `autoplay=False` blocks audio until a tap."""
    policy = "no-user-gesture-required" if autoplay else "user-gesture-required"
    args = [*CHROMIUM_ARGS, *FAKE_MEDIA_ARGS, f"--autoplay-policy={policy}", *(extra_args or [])]
    if wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={wav}")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)


# Installed once per page; listens to every audio sink audio.js has made (and new ones).
PROBE_JS = """
() => {
  if (window.__probe) return;
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 4096; // 85 ms of audio per frame, 11.7 Hz per bin
  analyser.smoothingTimeConstant = 0;
  const seen = new WeakSet();
  function scan() {
    for (const sink of document.querySelectorAll("audio[data-peer]")) {
      const stream = sink.srcObject;
      if (stream && !seen.has(stream) && stream.getAudioTracks().length) {
        seen.add(stream);
        ctx.createMediaStreamSource(stream).connect(analyser);
      }
    }
  }
  window.__probe = {
    ctx,
    analyser,
    async spectrum(ms) {
      scan();
      if (ctx.state !== "running") await ctx.resume();
      const bins = new Float32Array(analyser.frequencyBinCount);
      const sum = new Float64Array(analyser.frequencyBinCount);
      const frame = new Float32Array(analyser.frequencyBinCount);
      let frames = 0;
      const end = performance.now() + ms;
      while (performance.now() < end) {
        await new Promise((r) => setTimeout(r, 50));
        analyser.getFloatFrequencyData(frame);
        for (let i = 0; i < frame.length; i++) sum[i] += Math.pow(10, Math.max(frame[i], -200) / 10);
        frames++;
      }
      for (let i = 0; i < bins.length; i++) bins[i] = 10 * Math.log10(sum[i] / Math.max(frames, 1) + 1e-20);
      return { rate: ctx.sampleRate, fft: analyser.fftSize, bins: Array.from(bins) };
    },
  };
}
"""


class Spectrum:
    def __init__(self, raw: dict):
        self.rate = raw["rate"]
        self.fft = raw["fft"]
        self.bins = raw["bins"]

    def level_at(self, frequency: float) -> float:
        """The strongest bin within ±2 bins of `frequency`, in dB."""
        centre = round(frequency * self.fft / self.rate)
        return max(self.bins[max(0, centre - 2) : centre + 3])

    @property
    def floor(self) -> float:
        audible = sorted(self.bins[5 : round(4000 * self.fft / self.rate)])
        return audible[len(audible) // 2]

    def heard(self, frequency: float) -> bool:
        level = self.level_at(frequency)
        return level > HEARD_MIN_DB and level - self.floor > HEARD_OVER_FLOOR_DB

    def describe(self, *frequencies: float) -> str:
        levels = ", ".join(f"{f:.0f} Hz at {self.level_at(f):.0f} dB" for f in frequencies)
        return f"{levels}, floor {self.floor:.0f} dB"


def listen(page, ms: int = 600) -> Spectrum:
    """What the page hears over the next `ms` milliseconds, from all its audio sinks together."""
    page.evaluate(PROBE_JS)
    return Spectrum(page.evaluate("(ms) => window.__probe.spectrum(ms)", ms))


def inbound_bytes(page) -> int:
    return int(
        page.evaluate("async () => window.spacesAudio ? (await window.spacesAudio.stats()).inboundBytes : 0")
    )
