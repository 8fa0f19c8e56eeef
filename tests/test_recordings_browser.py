"""The replay page in real Chromium against a real daphne: it plays, seeking to the middle plays from
there (the audio answers Range with 206), the captions track loads, and ?t= starts at a time."""

from __future__ import annotations

import pytest

from rooms.models import Recording
from rooms.recordings.demo import SECONDS, demo_replay_seed
from tests.conftest import screenshot, start_asgi_server, stop_process
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def replay_server(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    host = UserFactory(display_name="Ana Ruiz")
    demo_replay_seed(None, host=host, people=[UserFactory(display_name="Ben Okafor")])
    recording = Recording.objects.get()
    server = start_asgi_server({"MEDIA_ROOT": str(settings.MEDIA_ROOT)}, name="replay")
    yield server, recording
    stop_process(server.proc)


def test_the_replay_plays_seeks_with_206_and_loads_captions(replay_server, browser_context):
    server, recording = replay_server
    context = browser_context(server=server, width=390, height=844)
    page = context.new_page()
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if "/replay/audio." in r.url else None)
    page.goto(f"{server.url}/spaces/{recording.space_id}/replay/")
    page.click("#replay-play")
    page.wait_for_function("document.querySelector('#replay-audio').currentTime > 0.5")
    box = page.locator("#replay-waveform").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(f"document.querySelector('#replay-audio').currentTime > {SECONDS / 2 - 1}")
    first = page.evaluate("document.querySelector('#replay-audio').currentTime")
    page.wait_for_timeout(1200)
    later = page.evaluate("document.querySelector('#replay-audio').currentTime")
    assert SECONDS / 2 - 1.5 < first < SECONDS / 2 + 1.5
    assert later > first + 0.5  # it plays on from the middle
    assert 206 in statuses
    assert page.evaluate("document.querySelector('#replay-audio').textTracks[0].cues.length") == 3
    page.wait_for_function("document.querySelector('#replay-caption').textContent.includes('archive')")
    screenshot(page, "replay-390")
    assert Recording.objects.get(pk=recording.pk).play_count == 1

    shared = context.new_page()
    shared.goto(f"{server.url}/spaces/{recording.space_id}/replay/?t=16")
    shared.wait_for_function("document.querySelector('#replay-audio').currentTime >= 16")
