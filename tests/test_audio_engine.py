"""static/js/audio.js in real Chromium, peer-to-peer, with the websocket replaced by a relay in
the test: the engine alone, without the Space page or the server (those are in
test_audio_browser.py).

Pages load from a routed http://localhost origin (a secure context, so getUserMedia works)
whose files come straight from the work tree.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.audio_tools import launch_browser, listen, write_tone_wav
from tests.conftest import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ORIGIN = "http://localhost"
HARNESS = """<!doctype html><meta charset="utf-8"><body><script type="module">
import { AudioEngine } from "/static/js/audio.js";
window.events = [];
window.makeEngine = (me, mode) => new AudioEngine({
  send: (msg) => window.outbox(msg),
  mode, iceServers: [], me,
  onSpeaking() {},
  onConnectionState(s) { window.events.push(["conn", s]); },
  onAutoplayBlocked() { window.events.push(["autoplay"]); },
  onMicError(m) { window.events.push(["mic", m]); },
});
window.ready = true;
</script>"""


def serve(route):
    path = route.request.url.removeprefix(ORIGIN)
    if path.startswith("/static/js/"):
        file = ROOT / path.lstrip("/")
        return route.fulfill(body=file.read_text(), content_type="text/javascript")
    return route.fulfill(body=HARNESS, content_type="text/html")


class Relay:
    """The Space websocket, minus the server: delivers signals and pushes state to each page."""

    def __init__(self):
        self.pages: dict[int, object] = {}
        self.queue: list[tuple[int, dict]] = []
        self.roles: dict[int, str] = {}
        self.muted: dict[int, bool] = {}
        self.delivered: list[tuple[int, int, str]] = []

    def join(self, context, user_id: int, role: str):
        context.route(f"{ORIGIN}/**", serve)
        page = context.new_page()
        page.expose_function("outbox", lambda msg, uid=user_id: self.queue.append((uid, msg)))
        page.goto(f"{ORIGIN}/harness.html")
        page.wait_for_function("window.ready === true")
        page.evaluate(
            "([me]) => { window.engine = window.makeEngine(me, 'p2p'); }",
            [{"user_id": user_id, "role": role}],
        )
        self.pages[user_id] = page
        self.roles[user_id] = role
        self.muted[user_id] = False
        return page

    def snapshot(self, user_id: int) -> dict:
        stage = [
            {"user_id": uid, "role": role, "muted": self.muted[uid], "present": True}
            for uid, role in self.roles.items()
            if role != "listener"
        ]
        me = {"user_id": user_id, "role": self.roles[user_id], "muted": self.muted[user_id], "removed": False}
        return {"space": {"state": "live"}, "me": me, "stage": stage}

    def push_state(self):
        for uid, page in self.pages.items():
            page.evaluate("(s) => window.engine.updateState(s)", self.snapshot(uid))

    def pump(self, seconds: float):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            while self.queue:
                sender, msg = self.queue.pop(0)
                to = msg["to"]
                if to in self.pages:
                    self.delivered.append((sender, to, msg["kind"]))
                    event = {"type": "signal", "from": sender, "kind": msg["kind"], "data": msg["data"]}
                    self.pages[to].evaluate("(m) => window.engine.handleSignal(m)", event)
            for page in self.pages.values():
                page.wait_for_timeout(20)


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("tones")
    return {f: write_tone_wav(folder / f"tone-{f}.wav", f) for f in (440, 660, 880)}


def test_p2p_listener_hears_both_speakers_and_a_speaker_hears_the_other_not_itself(pw, tones):
    a_browser = launch_browser(pw, wav=tones[440])
    b_browser = launch_browser(pw, wav=tones[660])
    try:
        relay = Relay()
        a = relay.join(a_browser.new_context(), 1, "host")
        b = relay.join(b_browser.new_context(), 2, "speaker")
        listener = relay.join(b_browser.new_context(), 3, "listener")
        relay.push_state()
        relay.pump(4)

        heard = listen(listener)
        assert heard.heard(440) and heard.heard(660), heard.describe(440, 660)
        at_a = listen(a)
        assert at_a.heard(660) and not at_a.heard(440), at_a.describe(440, 660)
        at_b = listen(b)
        assert at_b.heard(440) and not at_b.heard(660), at_b.describe(440, 660)

        relay.muted[1] = True
        relay.push_state()
        relay.pump(0.5)
        heard = listen(listener, 500)
        assert not heard.heard(440) and heard.heard(660), heard.describe(440, 660)
    finally:
        a_browser.close()
        b_browser.close()
