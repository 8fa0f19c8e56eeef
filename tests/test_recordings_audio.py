"""Recording real WebRTC audio in both modes, in real Chromium: a host (660 Hz) and a speaker
(440 Hz) talk for 20 s with recording on, both muting themselves for 6 s of it; the replay lasts
20 s ± 1 s, has both tones, and is silent where they were muted."""

from __future__ import annotations

import time

import pytest
from django.core.files.storage import default_storage

from rooms import services
from rooms.models import Recording, RecordingChunk
from rooms.recordings import processing
from tests.conftest import start_asgi_server, stop_process
from tests.factories import UserFactory
from tests.recording_support import RATE, decode_file, recording_media, rms, strength
from tests.test_audio_browser import (  # noqa: F401
    A,
    B,
    act,
    bring_on_stage,
    browsers,  # noqa: F401
    open_space,
    tones,
    wait_for,
)

RECORD_SECONDS = 20
MUTED_FROM, MUTED_UNTIL = 8, 14  # seconds after recording starts: both speakers muted


@pytest.fixture(params=["p2p", "janus"])
def recording_server(request, transactional_db, settings, tmp_path):
    env = recording_media(settings, tmp_path)
    if request.param == "janus":
        janus_server = request.getfixturevalue("janus_server")
        env.update({name: str(value) for name, value in janus_server.settings().items()})
        for name, value in janus_server.settings().items():
            setattr(settings, name, value)
    server = start_asgi_server(extra_env=env, name=f"daphne-recording-{request.param}")
    yield server, request.param
    stop_process(server.proc)


def test_both_voices_are_recorded_for_as_long_as_recording_was_on(recording_server, browsers):  # noqa: F811
    server, mode = recording_server
    host, speaker = UserFactory(hosting_granted=True), UserFactory()
    space = services.space_create(host=host, title=f"Recorded over {mode}")
    host_page = open_space(browsers(B), server, host, space)
    speaker_page = open_space(browsers(A), server, speaker, space)
    act(host_page, type="unmute_self")
    bring_on_stage(host_page, speaker_page, space, speaker)
    time.sleep(3)  # both are on air

    act(host_page, type="recording_toggle", on=True)
    host_page.wait_for_selector("#rec-mark:not([hidden])")
    speaker_page.wait_for_selector("#rec-mark:not([hidden])")
    time.sleep(MUTED_FROM)
    act(host_page, type="mute_self")
    act(speaker_page, type="mute_self")
    time.sleep(MUTED_UNTIL - MUTED_FROM)
    act(host_page, type="unmute_self")
    act(speaker_page, type="unmute_self")
    time.sleep(RECORD_SECONDS - MUTED_UNTIL)
    act(host_page, type="recording_toggle", on=False)
    host_page.wait_for_selector("#rec-mark", state="hidden")
    if mode == "p2p":
        # The host's browser sends its last chunk as the recorder stops.
        def settled() -> bool:
            n = RecordingChunk.objects.filter(recording__space=space).count()
            time.sleep(1.5)
            return n > 0 and RecordingChunk.objects.filter(recording__space=space).count() == n

        wait_for(settled, timeout=15, what="the last chunk")
    else:
        time.sleep(1)
    act(host_page, type="space_end")
    wait_for(
        lambda: Recording.objects.filter(space=space, state="processing").exists(), timeout=10, what="the end"
    )

    recording = processing.recording_process(recording_id=Recording.objects.get(space=space).pk)
    assert recording is not None and recording.state == Recording.State.READY
    assert abs(recording.duration_seconds - RECORD_SECONDS) <= 1.0, recording.duration_seconds
    audio = decode_file(default_storage.open(recording.web_audio.name).read())
    assert strength(audio, A) > 0.05 and strength(audio, B) > 0.05, (strength(audio, A), strength(audio, B))
    # 1.5 s margins either side of each switch allow for the capture starting a little late.
    talking = rms(audio[2 * RATE : (MUTED_FROM - 2) * RATE])
    muted = rms(audio[int((MUTED_FROM + 1.5) * RATE) : int((MUTED_UNTIL - 1.5) * RATE)])
    again = rms(audio[(MUTED_UNTIL + 2) * RATE : (RECORD_SECONDS - 1) * RATE])
    assert talking > 0.01 and again > 0.01, (talking, again)
    assert muted < talking / 100, (muted, talking, again)  # at least 40 dB quieter: silence
