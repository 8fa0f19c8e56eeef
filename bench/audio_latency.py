"""Mouth-to-ear latency of Space audio, peer-to-peer and through Janus.

    .venv/bin/python bench/audio_latency.py [--bursts 40] [--modes p2p,janus]

Prints one JSON line with p50/p95 per mode. For each mode it starts daphne on a fresh
SQLite file (and, for Janus mode, a Janus from Debian's package on free ports, as the
tests do), opens a live Space as its host (on stage, unmuted) and as a listener, both in
one Chromium so their clocks are the same (``performance.timeOrigin + now()``), and then:

- the host's microphone is a WebAudio oscillator behind a gain node (``getUserMedia`` is
  replaced in the page), so a 1 kHz burst starts at a known instant;
- the listener feeds every audio sink of audio.js into an analyser polled every ~4 ms and
  notes when the level crosses a threshold after a quiet gap.

Latency = onset at the listener − burst start at the speaker: capture → Opus → RTP over
loopback (and through the AudioBridge mixer and the Streaming mountpoint in Janus mode) →
jitter buffer → decode. Not included: the sound card's own input and output buffers
(typically 10–40 ms on a phone or laptop) and the network between real people; the
browser's echo canceller and noise suppressor are not in the path of a synthetic track.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import browser_bench_django, percentile  # noqa: E402

BURST_MS = 150
GAP_S = 0.6

FAKE_MIC = """
(() => {
  navigator.mediaDevices.getUserMedia = async () => {
    const ctx = new AudioContext({ latencyHint: "interactive" });
    const osc = ctx.createOscillator();
    osc.frequency.value = 1000;
    const gain = ctx.createGain();
    gain.gain.value = 0;
    const dest = ctx.createMediaStreamDestination();
    osc.connect(gain).connect(dest);
    osc.start();
    await ctx.resume();
    window.burst = (ms) => {
      const at = ctx.currentTime + 0.005;
      gain.gain.setValueAtTime(0.6, at);
      gain.gain.setValueAtTime(0, at + ms / 1000);
      // The instant the burst enters the graph, on the clock both pages share.
      return performance.timeOrigin + performance.now() + 5;
    };
    return dest.stream;
  };
})();
"""

DETECT = """
() => {
  const ctx = new AudioContext({ latencyHint: "interactive" });
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 256;
  const seen = new WeakSet();
  const buf = new Float32Array(analyser.fftSize);
  window.onsets = [];
  let loud = false;
  setInterval(() => {
    for (const sink of document.querySelectorAll("audio[data-peer]")) {
      if (sink.srcObject && !seen.has(sink.srcObject)) {
        seen.add(sink.srcObject);
        ctx.createMediaStreamSource(sink.srcObject).connect(analyser);
      }
    }
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const x of buf) sum += x * x;
    const rms = Math.sqrt(sum / buf.length);
    if (!loud && rms > 0.03) {
      loud = true;
      window.onsets.push(performance.timeOrigin + performance.now());
    } else if (loud && rms < 0.005) {
      loud = false;
    }
  }, 1);
}
"""


def run_mode(mode: str, bursts: int, workdir: Path, playwright) -> dict:
    from django.test import Client

    from rooms import services
    from tests.audio_tools import launch_browser
    from tests.conftest import start_asgi_server, stop_process
    from tests.factories import UserFactory

    env = {"SQLITE_PATH": os.environ["SQLITE_PATH"], "JANUS_URL": ""}
    janus_process = None
    if mode == "janus":
        from tests.janus_fixture import start_janus, stop_janus

        janus_process, janus = start_janus(workdir / "janus")
        env.update({k: str(v) for k, v in janus.settings().items()})
    server = start_asgi_server(extra_env=env, name=f"bench-audio-{mode}")
    browser = launch_browser(
        playwright,
        extra_args=["--disable-background-timer-throttling", "--disable-renderer-backgrounding"],
    )
    try:
        host = UserFactory(hosting_granted=True)
        listener = UserFactory()
        space = services.space_create(host=host, title=f"Latency over {mode}")

        def open_as(user, init_script: str | None = None):
            client = Client()
            client.force_login(user)
            context = browser.new_context()
            context.add_cookies(
                [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": server.url}]
            )
            if init_script:
                context.add_init_script(init_script)
            page = context.new_page()
            page.goto(f"{server.url}/spaces/{space.pk}/")
            page.wait_for_selector("#connection[data-status=open]")
            return page

        speaker_page = open_as(host, FAKE_MIC)
        listener_page = open_as(listener)
        speaker_page.evaluate("() => window.spaceSocket.send({ type: 'unmute_self' })")
        speaker_page.wait_for_function("() => typeof window.burst === 'function'", timeout=15_000)
        listener_page.wait_for_function(
            "() => document.querySelector('#audio-state')?.dataset.state === 'connected'", timeout=20_000
        )
        listener_page.evaluate(DETECT)
        time.sleep(2)  # let the jitter buffer settle

        latencies: list[float] = []
        missed = 0
        for _ in range(bursts):
            listener_page.evaluate("() => { window.onsets.length = 0; }")
            started = speaker_page.evaluate(f"() => window.burst({BURST_MS})")
            time.sleep(GAP_S)
            onsets = [t for t in listener_page.evaluate("() => window.onsets") if t >= started]
            if onsets:
                latencies.append(onsets[0] - started)
            else:
                missed += 1
        jitter = listener_page.evaluate(
            """async () => {
              const out = [];
              for (const link of window.spacesAudio.links.values()) {
                (await link.pc.getStats()).forEach((s) => {
                  if (s.type === "inbound-rtp" && s.kind === "audio" && s.jitterBufferEmittedCount)
                    out.push((1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount);
                });
              }
              return out;
            }"""
        )
        return {
            "n": len(latencies),
            "jitter_buffer_ms": round(statistics.mean(jitter), 1) if jitter else None,
            "missed": missed,
            "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "p95_ms": round(percentile(latencies, 95), 1) if latencies else None,
            "max_ms": round(max(latencies), 1) if latencies else None,
        }
    finally:
        browser.close()
        stop_process(server.proc)
        if janus_process is not None:
            stop_janus(janus_process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=40)
    parser.add_argument("--modes", default="p2p,janus")
    args = parser.parse_args()

    workdir = browser_bench_django("spaces-bench-audio-")
    from playwright.sync_api import sync_playwright

    result: dict = {"bench": "audio_latency", "bursts": args.bursts, "burst_ms": BURST_MS}
    with sync_playwright() as playwright:
        for mode in args.modes.split(","):
            result[mode] = run_mode(mode, args.bursts, workdir, playwright)
    result["cpus"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
