"""Time to first audio: from opening a Space page to hearing the stage, peer-to-peer and through Janus.

    .venv/bin/python bench/first_audio.py [--joins 20] [--modes p2p,janus]

Prints one JSON line with p50/p95 per mode and the median of each step. For each mode it
starts daphne on a fresh SQLite file (and, for Janus mode, a Janus from Debian's package on
free ports, as the tests do), and a live Space whose host is on stage, unmuted, with a
Chromium fake microphone playing a 550 Hz tone. Then, ``--joins`` times, a new listener
(a distinct user, a fresh browser context: nothing cached but the browser's own HTTP cache
of static files, as for someone opening a second Space) opens the Space page, and the page
notes, on its own clock (``performance.now()``, 0 = navigation start):

- ``html``: the page's HTML has arrived (navigation timing ``responseEnd``);
- ``dom_ready``: DOMContentLoaded has run (the page's ES modules are loaded and run);
- ``ws_create``: the page creates the Space websocket; ``ws_open``: it is open;
  ``snapshot``: its first frame arrived;
- ``offer``: the first remote description (Janus's Streaming offer, or a speaker's offer);
- ``ice``: the audio PeerConnection is connected; ``track``: its track arrived;
- ``audible``: the first ~5 ms in which the tone's level crosses a threshold, read by a
  WebAudio analyser on every ``<audio data-peer>`` sink audio.js makes.

The marks come from wrapping ``WebSocket`` and ``RTCPeerConnection`` in the page (an init
script of this benchmark; the app itself is unchanged). The listener leaves (its context is
closed) before the next one comes.
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

TONE_HZ = 550
TIMEOUT_MS = 15_000
READ_MARKS = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  return { ...window.firstAudio, html: nav.responseEnd, dom_ready: nav.domContentLoadedEventEnd };
}"""
STEPS = ("html", "dom_ready", "ws_create", "ws_open", "snapshot", "offer", "ice", "track", "audible")

MARKS = """
(() => {
  const marks = (window.firstAudio = {});
  const mark = (name) => {
    if (!(name in marks)) marks[name] = performance.now();
  };
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      mark("ws_create");
      super(...args);
      this.addEventListener("open", () => mark("ws_open"));
      this.addEventListener("message", () => mark("snapshot"));
    }
  };
  const NativePC = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends NativePC {
    constructor(...args) {
      super(...args);
      this.addEventListener("connectionstatechange", () => {
        if (this.connectionState === "connected") mark("ice");
      });
      this.addEventListener("track", () => mark("track"));
    }
    setRemoteDescription(...args) {
      mark("offer");
      return super.setRemoteDescription(...args);
    }
  };
  const ctx = new AudioContext({ latencyHint: "interactive" });
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 256;
  const buf = new Float32Array(analyser.fftSize);
  const seen = new WeakSet();
  const timer = setInterval(() => {
    for (const sink of document.querySelectorAll("audio[data-peer]")) {
      if (sink.srcObject && !seen.has(sink.srcObject) && sink.srcObject.getAudioTracks().length) {
        seen.add(sink.srcObject);
        ctx.createMediaStreamSource(sink.srcObject).connect(analyser);
      }
    }
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const x of buf) sum += x * x;
    if (Math.sqrt(sum / buf.length) > 0.03) {
      mark("audible");
      clearInterval(timer);
    }
  }, 2);
})();
"""


def run_mode(mode: str, joins: int, workdir: Path, playwright) -> dict:
    from django.test import Client

    from rooms import services
    from tests.audio_tools import launch_browser, write_tone_wav
    from tests.conftest import start_asgi_server, stop_process
    from tests.factories import UserFactory

    env = {"SQLITE_PATH": os.environ["SQLITE_PATH"], "JANUS_URL": ""}
    janus_process = None
    if mode == "janus":
        from tests.janus_fixture import start_janus, stop_janus

        janus_process, janus = start_janus(workdir / "janus")
        env.update({k: str(v) for k, v in janus.settings().items()})
    server = start_asgi_server(extra_env=env, name=f"bench-first-audio-{mode}")
    extra = ["--disable-background-timer-throttling", "--disable-renderer-backgrounding"]
    speaker_browser = launch_browser(
        playwright, wav=write_tone_wav(workdir / "tone.wav", TONE_HZ), extra_args=extra
    )
    listener_browser = launch_browser(playwright, extra_args=extra)

    def open_as(browser, user, space, init_script: str | None = None):
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
        return context, page

    try:
        host = UserFactory(hosting_granted=True)
        space = services.space_create(host=host, title=f"First audio over {mode}")
        _, host_page = open_as(speaker_browser, host, space)
        host_page.wait_for_selector("#connection[data-status=open]")
        host_page.evaluate("() => window.spaceSocket.send({ type: 'unmute_self' })")

        # One warm-up join (not counted): Janus builds the stage, Chromium fills its cache.
        samples: list[dict[str, float]] = []
        missed = 0
        for number in range(joins + 1):
            context, page = open_as(listener_browser, UserFactory(), space, MARKS)
            try:
                page.wait_for_function("() => 'audible' in window.firstAudio", timeout=TIMEOUT_MS)
                marks = page.evaluate(READ_MARKS)
                if number > 0:
                    samples.append(marks)
            except Exception:  # noqa: BLE001 - a join that never became audible is counted, not fatal
                missed += 1
            finally:
                context.close()
            time.sleep(0.5)  # the leave reaches the host and the speaker's connection is closed

        audible = [s["audible"] for s in samples]
        steps = {
            step: round(statistics.median(s[step] for s in samples if step in s), 1)
            for step in STEPS
            if any(step in s for s in samples)
        }
        return {
            "n": len(samples),
            "missed": missed,
            "p50_ms": round(statistics.median(audible), 1) if audible else None,
            "p95_ms": round(percentile(audible, 95), 1) if audible else None,
            "max_ms": round(max(audible), 1) if audible else None,
            "median_steps_ms": steps,
        }
    finally:
        speaker_browser.close()
        listener_browser.close()
        stop_process(server.proc)
        if janus_process is not None:
            stop_janus(janus_process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=20)
    parser.add_argument("--modes", default="p2p,janus")
    args = parser.parse_args()

    workdir = browser_bench_django("spaces-bench-first-audio-")
    from playwright.sync_api import sync_playwright

    result: dict = {"bench": "first_audio", "joins": args.joins, "target_p95_ms": 1000}
    with sync_playwright() as playwright:
        for mode in args.modes.split(","):
            result[mode] = run_mode(mode, args.joins, workdir, playwright)
    result["cpus"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
