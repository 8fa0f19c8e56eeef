"""A crash mid-recording still leaves a replay of what came before, minus at most 10 s: daphne killed
while the host's browser records (peer-to-peer), Janus killed while its AudioBridge records."""

from __future__ import annotations

import signal
import time

import pytest
from django.core.files.storage import default_storage

from rooms import services
from rooms.models import Recording, Space
from rooms.recordings import processing
from tests.conftest import start_asgi_server, stop_process
from tests.factories import UserFactory
from tests.janus_fixture import start_janus, stop_janus
from tests.recording_support import decode_file, recording_media, strength
from tests.strict import require_binary
from tests.test_audio_browser import (  # noqa: F401
    A,
    B,
    act,
    bring_on_stage,
    browsers,  # noqa: F401
    open_space,
    tones,
)

RECORDED = 12  # seconds recorded before the crash
MAX_LOSS = 10


@pytest.fixture(params=["p2p-daphne-killed", "janus-killed"])
def crash_setup(request, transactional_db, settings, tmp_path):
    env = recording_media(settings, tmp_path)
    janus_process = None
    if request.param == "janus-killed":
        (tmp_path / "janus").mkdir()
        janus_process, janus = start_janus(tmp_path / "janus", binary=require_binary("janus"))
        env.update({name: str(value) for name, value in janus.settings().items()})
        for name, value in janus.settings().items():
            setattr(settings, name, value)
    server = start_asgi_server(extra_env=env, name=f"daphne-{request.param}")
    yield server, request.param, janus_process
    stop_process(server.proc)
    if janus_process is not None:
        stop_janus(janus_process)


def test_a_crash_mid_recording_still_yields_the_replay_before_it(crash_setup, browsers):  # noqa: F811
    server, case, janus_process = crash_setup
    host, speaker = UserFactory(hosting_granted=True), UserFactory()
    space = services.space_create(host=host, title=f"Crash: {case}")
    host_page = open_space(browsers(B), server, host, space)
    speaker_page = open_space(browsers(A), server, speaker, space)
    act(host_page, type="unmute_self")
    bring_on_stage(host_page, speaker_page, space, speaker)
    time.sleep(3)
    act(host_page, type="recording_toggle", on=True)
    host_page.wait_for_selector("#rec-mark:not([hidden])")
    time.sleep(RECORDED)
    if janus_process is not None:
        janus_process.send_signal(signal.SIGKILL)
        janus_process.wait(timeout=5)
    else:
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=5)
    host_page.context.close()
    speaker_page.context.close()

    services.space_end(space=Space.objects.get(pk=space.pk), by=None)  # as the sweep ends it
    recording = processing.recording_process(recording_id=Recording.objects.get(space=space).pk)
    assert recording is not None and recording.state == Recording.State.READY
    assert RECORDED - MAX_LOSS <= recording.duration_seconds <= RECORDED + 1.5, recording.duration_seconds
    audio = decode_file(default_storage.open(recording.web_audio.name).read())
    assert strength(audio, A) > 0.05 or strength(audio, B) > 0.05
