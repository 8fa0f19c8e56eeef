"""Live audio through the real Space page, in headless Chromium, in both modes.

Peer-to-peer uses the project as `make run` does; Janus mode points a second daphne at the
test Janus (tests/janus_fixture.py). Each speaker is a Chromium process of its own, because the
fake microphone (a tone WAV) is per process; every person has their own browser context.
What a page hears is measured in the page (tests/audio_tools.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rooms import services
from rooms.models import Participant
from tests.audio_tools import Spectrum, inbound_bytes, launch_browser, listen, write_tone_wav
from tests.conftest import session_cookie_for, start_asgi_server, stop_process
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

A, B, C = 440, 660, 880  # speaker A, host B, listener C who is brought up later
WITHIN = 1.0  # seconds: a mute must silence the tone for listeners within this


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("tones")
    return {f: write_tone_wav(folder / f"tone-{f}.wav", f) for f in (A, B, C)}


@pytest.fixture(params=["p2p", "janus"])
def mode(request) -> str:
    return request.param


@pytest.fixture
def server(request, mode, transactional_db):
    env = {"JANUS_URL": ""}
    if mode == "janus":
        janus_server = request.getfixturevalue("janus_server")
        env = {name: str(value) for name, value in janus_server.settings().items()}
    srv = start_asgi_server(extra_env=env, name=f"daphne-audio-{mode}")
    yield srv
    stop_process(srv.proc)


@pytest.fixture
def janus_settings_for(request, mode, settings):
    """A context manager that points this process's rooms.janus at the test Janus."""
    from contextlib import contextmanager

    @contextmanager
    def use():
        server = request.getfixturevalue("janus_server")
        for name, value in server.settings().items():
            setattr(settings, name, value)
        yield server

    return use


@pytest.fixture
def browsers(pw, tones) -> Iterator[Callable[[int | None], object]]:
    """`browsers(440)`: a Chromium whose microphone plays 440 Hz (one per tone, reused)."""
    launched: dict[int | None, object] = {}

    def get(tone: int | None = None):
        if tone not in launched:
            launched[tone] = launch_browser(pw, wav=tones[tone] if tone else None)
        return launched[tone]

    yield get
    for browser in launched.values():
        browser.close()


def open_space(browser, server, user, space):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    context.add_cookies([session_cookie_for(user, server.url)])
    page = context.new_page()
    page.goto(f"{server.url}/spaces/{space.pk}/")
    page.wait_for_selector("#connection[data-status=open]")
    page.wait_for_function("window.spacesAudio !== undefined")
    return page


def act(page, **action) -> None:
    """Send an action on the page's own Space websocket, as its buttons do."""
    page.evaluate("(a) => window.spaceSocket.send(a)", action)


def role(space, user) -> str:
    return Participant.objects.get(space=space, user=user).role


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def listen_until(
    page, wanted: Callable, *, failure: str, timeout: float, window: int
) -> tuple[float, Spectrum]:
    """Seconds from now until a listening window (of `window` ms) starts whose spectrum is
    `wanted`, and that spectrum; fails, saying `failure`, after `timeout` seconds without one."""
    start = time.monotonic()
    while True:
        opened = time.monotonic()
        spectrum = listen(page, window)
        if wanted(spectrum):
            return opened - start, spectrum
        if opened - start > timeout:
            raise AssertionError(f"{failure} after {timeout}s: {spectrum.describe(A, B, C)}")


def until_heard(
    page, frequency: int, *, heard: bool = True, timeout: float = 15.0, window: int = 120
) -> float:
    """Seconds from now until a listening window (of `window` ms) starts in which `frequency` is
    (or is no longer) heard."""
    state = "heard" if heard else "silent"
    return listen_until(
        page,
        lambda s: s.heard(frequency) == heard,
        failure=f"{frequency} Hz not {state}",
        timeout=timeout,
        window=window,
    )[0]


def bring_on_stage(host_page, page, space, user) -> None:
    act(page, type="hand_raise")
    wait_for(
        # The socket opens before the server has joined the page (its row may not exist yet).
        lambda: Participant.objects.filter(space=space, user=user, hand_raised_at__isnull=False).exists(),
        timeout=5,
        what="hand",
    )
    act(host_page, type="speaker_accept", user_id=user.pk)
    wait_for(lambda: role(space, user) == "speaker", timeout=5, what="promotion")
    act(page, type="unmute_self")


RECORD_SPEAKING = """() => {
  window.speakingSeen = [];
  const socket = window.spaceSocket;
  const original = socket.onMessage;
  socket.onMessage = (msg) => {
    if (msg.type === "speaking") window.speakingSeen.push(msg);
    original(msg);
  };
}"""


def test_stage_is_heard_by_listeners_and_speakers_hear_each_other_not_themselves(server, browsers, mode):
    host, speaker, carol, lee = (
        UserFactory(hosting_granted=True),
        UserFactory(),
        UserFactory(),
        UserFactory(),
    )
    space = services.space_create(host=host, title=f"Tones over {mode}")

    host_page = open_space(browsers(B), server, host, space)
    a_page = open_space(browsers(A), server, speaker, space)
    c_page = open_space(browsers(C), server, carol, space)
    listener = open_space(browsers(B), server, lee, space)
    listener.evaluate(RECORD_SPEAKING)
    act(host_page, type="unmute_self")
    bring_on_stage(host_page, a_page, space, speaker)

    # The listener hears both speakers at once; bytes are flowing. (Each is first heard on its
    # own; on a loaded machine a half-second window can still catch one of them mid-glitch, so
    # the two together are waited for, within a bound.)
    until_heard(listener, A)
    until_heard(listener, B)
    _, spectrum = listen_until(
        listener,
        lambda s: s.heard(A) and s.heard(B),
        failure=f"{A} Hz and {B} Hz not heard together",
        timeout=10,
        window=500,
    )
    assert spectrum.heard(A) and spectrum.heard(B), spectrum.describe(A, B)
    assert not spectrum.heard(C), "a listener's microphone must not be on air"
    links = listener.evaluate("async () => Object.keys((await window.spacesAudio.stats()).links)")
    expected = ["0"] if mode == "janus" else sorted([str(host.pk), str(speaker.pk)])
    assert sorted(links) == expected, "Janus: one stream from the server; P2P: one per stage member"
    first = inbound_bytes(listener)
    assert first > 0
    wait_for(lambda: inbound_bytes(listener) > first, timeout=5, what="audio to keep arriving")

    # Each speaker hears the other and not themselves.
    at_a = listen(a_page, 500)
    assert at_a.heard(B) and not at_a.heard(A), at_a.describe(A, B)
    at_host = listen(host_page, 500)
    assert at_host.heard(A) and not at_host.heard(B), at_host.describe(A, B)
    assert host_page.locator("#audio-state").get_attribute("data-state") == "connected"

    if mode == "janus":
        # "Speaking now" comes from the AudioBridge's talking events (pages don't report it).
        listener.wait_for_function(
            "(id) => window.speakingSeen.some((m) => m.user_id === id && m.on)",
            arg=speaker.pk,
            timeout=10_000,
        )

    # A mutes: 440 Hz leaves the listener within a second; 660 Hz stays. Unmuting brings it back.
    act(a_page, type="mute_self")
    assert until_heard(listener, A, heard=False, timeout=3) <= WITHIN
    assert listen(listener, 300).heard(B)
    act(a_page, type="unmute_self")
    until_heard(listener, A, timeout=5)

    if mode == "janus":
        # A's page is modified to ignore mutes; the host's mute still silences A, in Janus.
        a_page.evaluate("() => { window.spacesAudio.setMuted = () => {}; }")
        act(host_page, type="mute_other", user_id=speaker.pk)
        assert until_heard(listener, A, heard=False, timeout=3) <= WITHIN
        assert a_page.evaluate("() => window.spacesAudio.mic.enabled") is True
        act(a_page, type="unmute_self")
        until_heard(listener, A, timeout=5)

    # Carol is brought up: her tone reaches the listener. Sent back to the audience: it stops.
    bring_on_stage(host_page, c_page, space, carol)
    until_heard(listener, C, timeout=15)
    assert listen(a_page, 400).heard(C)
    act(host_page, type="speaker_move_to_audience", user_id=carol.pk)
    assert until_heard(listener, C, heard=False, timeout=3) <= WITHIN
    assert not c_page.evaluate("() => window.spacesAudio.mic !== null")
    until_heard(c_page, A, timeout=10)  # and she still hears the stage, as a listener


RECORD_SIGNALS = """() => {
  window.signalsSeen = [];
  const engine = window.spacesAudio;
  const original = engine.handleSignal.bind(engine);
  engine.handleSignal = (msg) => { window.signalsSeen.push([msg.from, msg.kind]); original(msg); };
}"""


def test_removed_or_forging_listeners_get_no_audio_and_no_offers(server, browsers, mode, janus_settings_for):
    host = UserFactory(hosting_granted=True)
    lee, rob, eve = UserFactory(), UserFactory(), UserFactory()
    space = services.space_create(host=host, title=f"Moderated over {mode}")
    host_page = open_space(browsers(A), server, host, space)
    pages = {u: open_space(browsers(None), server, u, space) for u in (lee, rob, eve)}
    act(host_page, type="unmute_self")
    for page in pages.values():
        until_heard(page, A)
        page.evaluate(RECORD_SIGNALS)

    # Eve forges: an offer to another listener (P2P), or a speaker's offer to Janus.
    eve_page = pages[eve]
    if mode == "p2p":
        eve_page.evaluate(
            """async (to) => {
              const pc = new RTCPeerConnection();
              pc.addTransceiver("audio", { direction: "sendrecv" });
              const offer = await pc.createOffer();
              window.spaceSocket.send({ type: "signal", to, kind: "offer",
                data: { id: "zzzzzzzzz-forged", sdp: { type: offer.type, sdp: offer.sdp } } });
            }""",
            lee.pk,
        )
        # The server refuses, and says why.
        eve_page.wait_for_selector(".toast-error:has-text('Audio only flows')")
    else:
        eve_page.evaluate(
            """async () => {
              const pc = new RTCPeerConnection();
              pc.addTransceiver("audio", { direction: "sendrecv" });
              const offer = await pc.createOffer();
              window.spaceSocket.send({ type: "signal", to: 0, kind: "offer",
                data: { id: "forged", sdp: { type: offer.type, sdp: offer.sdp } } });
            }"""
        )
        eve_page.wait_for_function("() => window.signalsSeen.some(([f, k]) => f === 0 && k === 'ice')")
        from rooms import janus

        with janus_settings_for():
            displays = [p.display for p in janus.stage_participants(space_id=space.pk)]
        assert displays == [f"user:{host.pk}"], "only the host is in the AudioBridge room"
    time.sleep(0.5)  # nothing is to arrive: give a stray signal the time it would take
    assert [s for s in pages[lee].evaluate("() => window.signalsSeen") if s[0] == eve.pk] == []

    # The host removes Rob: his page is told, his audio stops and nobody keeps a connection to him.
    rob_page = pages[rob]
    act(host_page, type="participant_remove", user_id=rob.pk)
    rob_page.wait_for_selector("#ended:not([hidden])")
    assert rob_page.evaluate("() => document.querySelectorAll('audio[data-peer]').length") == 0
    until_heard(rob_page, A, heard=False, timeout=2)
    time.sleep(1)  # nothing is to arrive: a second later is the check
    assert not listen(rob_page, 300).heard(A), "nothing reaches him a second later"
    host_links = host_page.evaluate(HOST_LINKS)
    assert str(rob.pk) not in host_links
    # Lee closes her page: the host's page takes her off its list of listeners and no longer has
    # a link to her (peer-to-peer it was sending her the stage).
    if mode == "p2p":
        assert str(lee.pk) in host_links
    pages[lee].close()
    host_page.wait_for_selector(f"[data-testid=listener-{lee.username}]", state="detached", timeout=4000)
    host_page.wait_for_function(
        f"async (id) => !(await ({HOST_LINKS})()).includes(id)", arg=str(lee.pk), polling=100, timeout=4000
    )
    # He cannot come back for more.
    again = rob_page.context.new_page()
    response = again.goto(f"{server.url}/spaces/{space.pk}/")
    if response.status == 200:  # the page may render; its socket is refused
        again.wait_for_selector("#ended:not([hidden])")
    time.sleep(1)  # nothing is to arrive: give a refused socket's audio the time it would take
    assert again.evaluate("() => document.querySelectorAll('audio[data-peer]').length") == 0
    assert not listen(again, 300).heard(A)


HOST_LINKS = "async () => Object.keys((await window.spacesAudio.stats()).links)"

REFUSE_MIC = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
"""


@pytest.mark.parametrize("mode", ["p2p"])  # the page's handling is the same in both modes
def test_a_refused_microphone_is_explained_and_leaves_the_speaker_listening(server, browsers, mode):
    host, carol = UserFactory(hosting_granted=True), UserFactory()
    space = services.space_create(host=host, title="People things")
    host_page = open_space(browsers(A), server, host, space)
    act(host_page, type="unmute_self")

    # Carol refuses the microphone when she comes on stage: she is told, and keeps listening.
    context = browsers(None).new_context()
    context.add_init_script(REFUSE_MIC)
    context.add_cookies([session_cookie_for(carol, server.url)])
    carol_page = context.new_page()
    carol_page.goto(f"{server.url}/spaces/{space.pk}/")
    carol_page.wait_for_selector("#connection[data-status=open]")
    bring_on_stage(host_page, carol_page, space, carol)
    carol_page.wait_for_selector(".toast-error:has-text('listening only')")
    assert carol_page.evaluate("() => window.spacesAudio.mic") is None
    until_heard(carol_page, A)
    # (Autoplay: headless Chromium plays WebRTC audio whatever --autoplay-policy says, so the
    # "Tap to listen" path — play() refused → onAutoplayBlocked → resumePlayback — is not driven here.)
