"""Captions in real Chromium: a stage member's fake microphone plays espeak-ng speech, the page
streams it through captions.js to the server, and a listener's page shows "Name: …".

The speaker is a Chromium process of its own (the fake microphone is per process); the listener
shares nothing with them but the server.
"""

from __future__ import annotations

import array
import random
import re
import subprocess
import time
from pathlib import Path

import pytest

from rooms import services, tasks
from rooms.models import CaptionLine, Space
from tests.audio_tools import launch_browser
from tests.conftest import screenshot, session_cookie_for, start_asgi_server, stop_process
from tests.factories import UserFactory
from tests.strict import require_binary

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SENTENCE = "good morning everyone"
EXPECTED = {"good", "morning", "everyone"}


def speech_wav(path: Path, text: str) -> Path:
    """`text` spoken by espeak-ng as a 48 kHz mono WAV with a second of quiet around it and a faint
    noise floor, as a real microphone has (Chromium loops the file)."""
    espeak, sox = require_binary("espeak-ng"), require_binary("sox")
    raw = path.with_suffix(".espeak.wav")
    subprocess.run([espeak, "-w", str(raw), "-s", "150", "-v", "en-us", text], check=True, timeout=30)
    pcm = subprocess.run(
        [sox, str(raw), "-r", "48000", "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "raw", "-"],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    quiet = bytes(48000 * 2)
    samples = array.array("h", quiet + pcm + quiet)
    rng = random.Random(7)
    for i, value in enumerate(samples):
        samples[i] = max(-32768, min(32767, value + int(rng.gauss(0, 60))))
    padded = path.with_suffix(".raw")
    padded.write_bytes(samples.tobytes())
    subprocess.run(
        [
            sox,
            "-r",
            "48000",
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            "-t",
            "raw",
            str(padded),
            str(path),
        ],
        check=True,
        timeout=30,
    )
    return path


@pytest.fixture
def server(transactional_db, tmp_path, settings):
    # The server keeps the speech of each caption here; the test, standing in for the Celery
    # worker, reads it from the same place.
    settings.MEDIA_ROOT = tmp_path / "media"
    srv = start_asgi_server(
        extra_env={"JANUS_URL": "", "SPACES_CAPTIONS_WORKERS": "1", "MEDIA_ROOT": str(settings.MEDIA_ROOT)},
        name="daphne-captions",
    )
    yield srv
    stop_process(srv.proc)


def open_page(browser, server, user, path: str, *, width: int = 390, height: int = 844):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    context.add_cookies([session_cookie_for(user, server.url)])
    page = context.new_page()
    page.goto(f"{server.url}{path}")
    return page


def settled_lines(space, quiet: float = 3.0, timeout: float = 20) -> int:
    """The number of caption lines kept for `space`, once it has stopped changing for `quiet` s."""
    deadline = time.monotonic() + timeout
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = CaptionLine.objects.filter(space=space).count()
        if now != count:
            count, since = now, time.monotonic()
        elif now and time.monotonic() - since >= quiet:
            return count
        time.sleep(0.1)
    raise AssertionError(f"caption lines of Space {space.pk} did not settle: {count}")


def test_a_listener_sees_the_speakers_words_as_captions(pw, server, tmp_path, monkeypatch):
    host = UserFactory(hosting_granted=True, display_name="Ana")
    listener = UserFactory(display_name="Lee")
    space = services.space_create(host=host, title="Morning show", captions_enabled=True)
    wav = speech_wav(tmp_path / "speech.wav", SENTENCE)
    speaker_browser = launch_browser(pw, wav=wav)
    listener_browser = launch_browser(pw)
    try:
        listener_page = open_page(listener_browser, server, listener, f"/spaces/{space.pk}/")
        listener_page.wait_for_selector("#connection[data-status=open]")
        host_page = open_page(speaker_browser, server, host, f"/spaces/{space.pk}/", width=1280, height=800)
        host_page.wait_for_selector("#connection[data-status=open]")
        host_page.click("#mic-button")
        host_page.wait_for_selector("#mic-button.on")

        # The listener's page shows "Ana: …" with the spoken words (the file loops, so wait for a
        # final line that has them).
        line = listener_page.wait_for_function(
            """(expected) => {
                for (const p of document.querySelectorAll('#caption-lines .caption-line:not(.partial)')) {
                  const words = p.querySelector('span').textContent.toLowerCase().split(/[^a-z']+/);
                  if (words.filter((w) => expected.includes(w)).length >= 2) return p.textContent;
                }
                return null;
            }""",
            arg=sorted(EXPECTED),
            timeout=60_000,  # a busy machine: the recogniser loads its model on the first uplink
        ).json_value()
        assert line.startswith("Ana: "), line
        assert listener_page.locator("#captions").is_visible()
        screenshot(listener_page, "captions-listener-390")
        listener_page.set_viewport_size({"width": 1280, "height": 800})
        screenshot(listener_page, "captions-listener-1280")
        uplink = host_page.evaluate(
            "async () => { const m = await import('/static/js/captions.js'); const u = m.captionsUplink();"
            " return u && { sent: u.sent, sending: u.serverSending }; }"
        )
        assert uplink["sending"] is True and uplink["sent"] > 10

        # Muting stops the uplink: nothing more is sent.
        host_page.click("#mic-button")
        host_page.wait_for_selector("#mic-button:not(.on)")
        host_page.wait_for_function(
            "async () => (await import('/static/js/captions.js')).captionsUplink() === null", polling=200
        )

        # The listener hides captions: the box goes away, and the choice sticks.
        listener_page.click("#captions-viewer-toggle")
        assert listener_page.locator("#captions").is_hidden()
        assert listener_page.locator("#captions-viewer-label").text_content() == "Show captions"

        # After the end, the transcript is improved (the Celery task, run here), and the host
        # reads, publishes and downloads it.
        queued = []
        monkeypatch.setattr(tasks.transcript_improve, "delay", queued.append)
        settled_lines(space)  # the last words, finished when the host muted
        services.space_end(space=space, by=host)
        assert CaptionLine.objects.filter(space=space, speaker=host, speaker_name="Ana").exists()
        assert queued == [space.pk]
        kept = list(CaptionLine.objects.filter(space=space).values_list("pk", "start", "end"))
        tasks.transcript_improve(space.pk)
        improved = CaptionLine.objects.filter(pk__in=[pk for pk, _, _ in kept])
        assert sorted(improved.values_list("pk", "start", "end")) == sorted(kept)
        assert not improved.exclude(audio="").exists()
        host_page.goto(f"{server.url}/spaces/{space.pk}/transcript/")
        # Whisper's second pass hears the sentence again, cut where the lines were cut: at least
        # one of its words, whichever survived the cut (seen: "Don't worry, everyone.").
        heard = set(re.findall(r"[a-z']+", host_page.locator(".transcript-lines").text_content().lower()))
        assert heard & EXPECTED, heard
        assert host_page.locator("text=Transcript improved").is_visible()
        screenshot(host_page, "transcript-host-1280")
        host_page.click("[data-testid=transcript-publish]")
        host_page.wait_for_selector("text=Published on the Space page")
        host_page.set_viewport_size({"width": 390, "height": 844})
        screenshot(host_page, "transcript-host-390")
        with host_page.expect_download() as download:
            host_page.click("text=Download WebVTT")
        assert Path(download.value.path()).read_text().startswith("WEBVTT\n\n00:")

        listener_page.goto(f"{server.url}/spaces/{space.pk}/")
        assert "Ana:" in listener_page.locator("[data-testid=transcript]").text_content()
        listener_page.set_viewport_size({"width": 390, "height": 844})
        screenshot(listener_page, "transcript-ended-space-390")
        listener_page.set_viewport_size({"width": 1280, "height": 800})
        screenshot(listener_page, "transcript-ended-space-1280")
        assert Space.objects.get(pk=space.pk).transcript.is_published
    finally:
        speaker_browser.close()
        listener_browser.close()
