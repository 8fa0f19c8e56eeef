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


def test_an_invited_listener_is_told_of_the_recording_before_accepting(asgi_server, browser_context):
    from rooms import services
    from rooms.models import Participant

    host, listener = UserFactory(hosting_granted=True), UserFactory()
    space = services.space_create(host=host, title="Recorded, with consent")
    pages = {}
    for who, user in (("host", host), ("listener", listener)):
        pages[who] = browser_context(server=asgi_server, user=user, width=390, height=844).new_page()
        pages[who].goto(f"{asgi_server.url}/spaces/{space.pk}/")
        pages[who].wait_for_selector("#connection[data-status=open]")
    page = pages["listener"]

    def host_sends(**frame) -> None:  # as the host's buttons do, on the host's own socket
        pages["host"].evaluate("(frame) => window.spaceSocket.send(frame)", frame)

    host_sends(type="recording_toggle", on=True)
    page.wait_for_selector("#rec-mark:not([hidden])")
    host_sends(type="speaker_invite", user_id=listener.pk)
    page.wait_for_selector("#invite-banner:not([hidden])")
    assert page.locator("#invite-recording").is_visible()
    assert "This Space is being recorded" in page.locator("#invite-banner").inner_text()
    screenshot(page, "invite-while-recording-phone")
    assert Participant.objects.get(space=space, user=listener).role == Participant.Role.LISTENER

    host_sends(type="recording_toggle", on=False)  # the notice goes with the recording
    page.wait_for_selector("#invite-recording", state="hidden")
    assert page.locator("#invite-banner").is_visible()
