"""Listeners spread over several Janus Streaming relays (JANUS_RELAYS), with real Janus processes.

One Janus runs the AudioBridge (the test session's `janus_server`), two more are relays started
here with the same secrets. The browser test drives the real Space page in Chromium: two listeners
land on different relays, both hear the stage, and when one relay is killed its listener hears the
stage again, from the other relay, within five seconds and without a reload.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Iterator

import pytest

from rooms import janus, relays, services
from tests.audio_tools import launch_browser, write_tone_wav
from tests.conftest import start_asgi_server, stop_process
from tests.factories import UserFactory
from tests.janus_fixture import JanusServer, start_relays, stop_janus
from tests.test_audio_browser import open_space, until_heard

pytestmark = pytest.mark.janus

_space_ids = itertools.count((os.getpid() % 10_000) * 1_000 + 700)
TONE = 550
MOVED_WITHIN = 5.0


@pytest.fixture
def relay_servers(janus_server: JanusServer, tmp_path) -> Iterator[list]:
    started = start_relays(tmp_path, janus_server, count=2)
    yield started
    for process, _ in started:
        stop_janus(process)


@pytest.fixture
def relay_settings(janus_server: JanusServer, relay_servers, settings) -> list[str]:
    for name, value in janus_server.settings().items():
        setattr(settings, name, value)
    settings.JANUS_RELAYS = [server.url for _, server in relay_servers]
    return settings.JANUS_RELAYS


# --- choosing a relay --------------------------------------------------------------


def test_a_listener_goes_to_the_relay_with_the_fewest_listeners():
    urls = ["http://a/janus", "http://b/janus", "http://c/janus"]
    assert (
        relays.choose(urls, down=set(), counts={"http://a/janus": 3, "http://b/janus": 1}) == "http://c/janus"
    )
    assert relays.choose(urls, down=set(), counts={}) == "http://a/janus", "ties go to the first listed"
    counts = {"http://a/janus": 5, "http://b/janus": 0, "http://c/janus": 1}
    assert relays.choose(urls, down={"http://b/janus"}, counts=counts) == "http://c/janus"


def test_with_every_relay_down_listeners_watch_the_main_janus():
    assert relays.choose(["http://a/janus"], down={"http://a/janus"}, counts={}) is None
    assert relays.choose([], down=set(), counts={}) is None


def test_listener_counts_go_up_and_down_and_never_below_zero(settings):
    settings.JANUS_RELAYS = "http://one:8088/janus/, http://two:8088/janus"
    one, two = janus.relay_urls()
    assert (one, two) == ("http://one:8088/janus", "http://two:8088/janus")
    relays.listener_counted(url=one, delta=1)
    relays.listener_counted(url=one, delta=1)
    relays.listener_counted(url=two, delta=-1)
    counts = relays.listener_counts([one, two])
    relays.listener_counted(url=one, delta=-2)
    relays.listener_counted(url=two, delta=1)
    assert counts == {one: 2, two: 0}


# --- the stage on every relay ----------------------------------------------------------


def test_the_stage_forwards_its_mix_to_every_relay_and_leaves_them_when_it_ends(relay_settings):
    space_id = next(_space_ids)
    try:
        stage = janus.stage_create(space_id=space_id)
        again = janus.stage_create(space_id=space_id)
        ports = {
            url: int(janus.mountpoint_info(space_id=space_id, url=url)["media"][0]["port"])
            for url in relay_settings
        }
        forwarded = {int(f["port"]) for f in janus.stage_forwarders(space_id=space_id)}
        assert forwarded == {stage.rtp_port, *ports.values()}, (
            "one forwarder per relay, plus the main mountpoint"
        )
        assert again == stage
    finally:
        janus.stage_destroy(space_id=space_id)
    for url in relay_settings:
        with pytest.raises(janus.JanusError) as gone:
            janus.mountpoint_info(space_id=space_id, url=url)
        assert gone.value.code == janus.STREAMING_NO_SUCH_MOUNTPOINT


def test_a_relay_that_missed_the_stage_gets_it_when_asked(relay_settings, janus_server, settings):
    space_id = next(_space_ids)
    settings.JANUS_RELAYS = []
    try:
        janus.stage_create(space_id=space_id)
        settings.JANUS_RELAYS = relay_settings
        late = relay_settings[1]
        with pytest.raises(janus.JanusError):
            janus.mountpoint_info(space_id=space_id, url=late)
        janus.relay_stage_ensure(space_id=space_id, url=late)
        port = int(janus.mountpoint_info(space_id=space_id, url=late)["media"][0]["port"])
        assert port in {int(f["port"]) for f in janus.stage_forwarders(space_id=space_id)}
    finally:
        janus.stage_destroy(space_id=space_id)


# --- two Chromium listeners on two relays --------------------------------------------------


def viewers(space_id: int, url: str) -> int:
    try:
        return int(janus.mountpoint_info(space_id=space_id, url=url).get("viewers", 0))
    except janus.JanusError:
        return -1


def wait_for(condition, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("failure", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "hung"])
def test_listeners_on_two_relays_hear_the_stage_and_move_when_one_dies(
    janus_server, relay_servers, relay_settings, pw, tmp_path, failure
):
    """Killed: its connections break at once. Hung (SIGSTOP): it still holds its sockets open and
    only the health check notices."""
    env = {name: str(value) for name, value in janus_server.settings().items()}
    env["JANUS_RELAYS"] = ",".join(relay_settings)
    server = start_asgi_server(extra_env=env, name="daphne-relays")
    speaker_browser = launch_browser(pw, wav=write_tone_wav(tmp_path / "tone.wav", TONE))
    listener_browser = launch_browser(pw)
    try:
        host, ann, bob = UserFactory(hosting_granted=True), UserFactory(), UserFactory()
        space = services.space_create(host=host, title="Over two relays")
        host_page = open_space(speaker_browser, server, host, space)
        host_page.evaluate("() => window.spaceSocket.send({ type: 'unmute_self' })")

        ann_page = open_space(listener_browser, server, ann, space)
        until_heard(ann_page, TONE)
        bob_page = open_space(listener_browser, server, bob, space)
        until_heard(bob_page, TONE)

        first, second = relay_settings
        assert (viewers(space.pk, first), viewers(space.pk, second)) == (1, 1), "one listener per relay"

        # Kill or freeze the relay Ann watches (the first: she came first); Bob's relay carries on.
        process, _ = relay_servers[0]
        os.kill(process.pid, failure)
        killed_at = time.monotonic()
        until_heard(ann_page, TONE, heard=False, timeout=5)
        until_heard(ann_page, TONE, timeout=MOVED_WITHIN)
        moved_after = time.monotonic() - killed_at
        assert moved_after < MOVED_WITHIN, f"Ann heard the stage again only after {moved_after:.1f}s"
        assert ann_page.evaluate("() => location.href").endswith(f"/spaces/{space.pk}/"), "no reload"
        assert viewers(space.pk, second) == 2, "both listeners now on the relay that is left"
        until_heard(bob_page, TONE, timeout=2)
    finally:
        if failure == signal.SIGSTOP:
            os.kill(relay_servers[0][0].pid, signal.SIGCONT)
        speaker_browser.close()
        listener_browser.close()
        stop_process(server.proc)
