"""rooms.janus against a real Janus (tests/janus_fixture.py). No database needed."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from rooms import janus
from rooms.janus import JanusError
from tests.janus_fixture import JanusServer

pytestmark = pytest.mark.janus

# Distinct room ids per test and per run, since the Janus process is shared by the session.
_space_ids = itertools.count((os.getpid() % 10_000) * 1_000 + 1)


@pytest.fixture(autouse=True)
def janus_settings(janus_server: JanusServer, settings) -> JanusServer:
    for name, value in janus_server.settings().items():
        setattr(settings, name, value)
    settings.JANUS_TIMEOUT = 5.0
    return janus_server


@pytest.fixture
def space_id() -> Iterator[int]:
    space_id = next(_space_ids)
    yield space_id
    janus.stage_destroy(space_id=space_id)


@dataclass(frozen=True)
class Joined:
    id: int
    handle: janus.PluginHandle


@contextmanager
def participant(*, space_id: int, token: str | None, display: str = "speaker") -> Iterator[Joined]:
    """Join the room as a browser would, minus the PeerConnection, which listing and muting don't need."""
    session_id = janus.session_create()
    try:
        handle = janus.handle_attach(session_id=session_id, plugin=janus.AUDIOBRIDGE)
        body: dict[str, object] = {"request": "join", "room": space_id, "display": display, "muted": False}
        if token is not None:
            body["token"] = token
        event = janus.handle_message(handle=handle, body=body, timeout=5)
        assert event.data["audiobridge"] == "joined"
        yield Joined(id=int(event.data["id"]), handle=handle)
    finally:
        janus.session_destroy(session_id=session_id)


def participants_by_id(space_id: int) -> dict[int, janus.Participant]:
    return {p.id: p for p in janus.stage_participants(space_id=space_id)}


# --- stage lifecycle -------------------------------------------------------------


def test_stage_create_makes_a_room_a_mountpoint_and_a_forwarder_between_them(space_id):
    stage = janus.stage_create(space_id=space_id, description="Morning show")

    assert janus.stage_exists(space_id=space_id)
    forwarders = janus.stage_forwarders(space_id=space_id)
    assert len(forwarders) == 1
    assert forwarders[0]["ip"] == "127.0.0.1"
    assert forwarders[0]["port"] == stage.rtp_port
    assert forwarders[0]["stream_id"] == stage.forwarder_id
    assert forwarders[0]["codec"] == "opus"


def test_stage_mountpoint_is_audio_only_opus_behind_the_listener_pin(space_id):
    stage = janus.stage_create(space_id=space_id)

    info = janus.mountpoint_info(space_id=space_id)
    assert info["id"] == stage.mountpoint_id
    assert info["pin"] == janus.listener_admit(space_id=space_id).pin
    assert info["is_private"] is True
    assert [(m["type"], m["codec"], m["port"]) for m in info["media"]] == [("audio", "opus", stage.rtp_port)]


def test_stage_create_twice_returns_the_same_stage_without_a_second_forwarder(space_id):
    first = janus.stage_create(space_id=space_id)
    second = janus.stage_create(space_id=space_id)

    assert second == first
    assert len(janus.stage_forwarders(space_id=space_id)) == 1


def test_stage_create_completes_a_half_built_stage(space_id):
    first = janus.stage_create(space_id=space_id)
    janus._room_request("destroy", space_id=space_id)  # as if a process died between the steps

    second = janus.stage_create(space_id=space_id)

    assert second.rtp_port == first.rtp_port
    assert [f["port"] for f in janus.stage_forwarders(space_id=space_id)] == [first.rtp_port]


def test_stage_destroy_removes_room_and_mountpoint_and_can_run_twice(space_id):
    janus.stage_create(space_id=space_id)

    janus.stage_destroy(space_id=space_id)
    janus.stage_destroy(space_id=space_id)

    assert not janus.stage_exists(space_id=space_id)
    with pytest.raises(JanusError) as excinfo:
        janus.mountpoint_info(space_id=space_id)
    assert excinfo.value.code == janus.STREAMING_NO_SUCH_MOUNTPOINT


def test_stage_destroy_of_a_stage_that_never_existed_is_fine(space_id):
    before = set(janus.server_sessions())
    assert not janus.stage_exists(space_id=space_id)

    janus.stage_destroy(space_id=space_id)  # raises nothing

    assert not janus.stage_exists(space_id=space_id)
    assert set(janus.server_sessions()) <= before


def test_stage_calls_leave_no_janus_session_behind(space_id):
    before = set(janus.server_sessions())

    janus.stage_create(space_id=space_id)
    janus.speaker_admit(space_id=space_id, user_id=1)
    janus.stage_destroy(space_id=space_id)

    assert set(janus.server_sessions()) <= before


async def test_async_wrappers_create_and_destroy_a_stage(space_id):
    stage = await janus.astage_create(space_id=space_id)
    assert stage.room_id == space_id

    await janus.astage_destroy(space_id=space_id)
    assert not janus.stage_exists(space_id=space_id)


# --- admission -------------------------------------------------------------------


def test_allowed_list_gains_and_loses_a_speakers_token(space_id):
    janus.stage_create(space_id=space_id)
    alice = janus.speaker_token(space_id=space_id, user_id=1)
    bob = janus.speaker_token(space_id=space_id, user_id=2)

    assert sorted(janus.room_allowed(space_id=space_id, action="add", tokens=[alice, bob])) == sorted(
        [alice, bob]
    )
    assert janus.room_allowed(space_id=space_id, action="remove", tokens=[alice]) == [bob]


def test_speaker_tokens_differ_per_user_and_per_space():
    tokens = {janus.speaker_token(space_id=s, user_id=u) for s in (1, 2) for u in (1, 2)}
    assert len(tokens) == 4


def test_join_with_a_token_that_is_not_allowed_is_refused_by_janus(space_id):
    janus.stage_create(space_id=space_id)
    janus.speaker_admit(space_id=space_id, user_id=1)

    with pytest.raises(JanusError) as excinfo, participant(space_id=space_id, token="not-a-real-token"):
        pass
    assert excinfo.value.code == janus.AUDIOBRIDGE_UNAUTHORIZED
    assert excinfo.value.plugin == janus.AUDIOBRIDGE


def test_join_without_any_token_is_refused_by_janus(space_id):
    janus.stage_create(space_id=space_id)

    with pytest.raises(JanusError) as excinfo, participant(space_id=space_id, token=None):
        pass
    assert excinfo.value.code == janus.AUDIOBRIDGE_UNAUTHORIZED


def test_admitted_speaker_joins_and_a_revoked_one_cannot_rejoin(space_id):
    janus.stage_create(space_id=space_id)
    speaker = janus.speaker_admit(space_id=space_id, user_id=7)

    with participant(space_id=space_id, token=speaker.token) as joined:
        assert joined.id in participants_by_id(space_id)

    janus.speaker_revoke(space_id=space_id, user_id=7)
    with pytest.raises(JanusError) as excinfo, participant(space_id=space_id, token=speaker.token):
        pass
    assert excinfo.value.code == janus.AUDIOBRIDGE_UNAUTHORIZED


def test_revoking_with_a_participant_id_also_kicks_them_out(space_id):
    janus.stage_create(space_id=space_id)
    speaker = janus.speaker_admit(space_id=space_id, user_id=7)

    with participant(space_id=space_id, token=speaker.token) as joined:
        janus.speaker_revoke(space_id=space_id, user_id=7, participant_id=joined.id)
        events = janus.session_events(session_id=joined.handle.session_id, timeout=5)
    # Janus completes a kick by closing the PeerConnection, which this test participant has
    # not got; what it can see is the notice Janus sends to everyone in the room.
    kicked = [e["plugindata"]["data"].get("kicked") for e in events if "plugindata" in e]
    assert joined.id in kicked


def test_listener_with_the_pin_may_watch_and_without_it_is_refused(space_id):
    janus.stage_create(space_id=space_id)
    listener = janus.listener_admit(space_id=space_id)

    with janus.plugin_handle(plugin=janus.STREAMING) as handle:
        with pytest.raises(JanusError) as excinfo:
            janus.handle_message(
                handle=handle, body={"request": "watch", "id": listener.mountpoint_id, "pin": "wrong"}
            )
        assert excinfo.value.code == janus.STREAMING_UNAUTHORIZED

        event = janus.handle_message(
            handle=handle,
            body={"request": "watch", "id": listener.mountpoint_id, "pin": listener.pin},
            timeout=10,
        )
    assert event.data["result"]["status"] == "preparing"
    assert event.jsep is not None and event.jsep["type"] == "offer"
    assert "opus/48000" in event.jsep["sdp"]


# --- moderation ------------------------------------------------------------------


def test_server_side_mute_and_unmute_show_in_listparticipants(space_id):
    janus.stage_create(space_id=space_id)
    speaker = janus.speaker_admit(space_id=space_id, user_id=3)

    with participant(space_id=space_id, token=speaker.token, display="Carol") as joined:
        participant_id = joined.id
        assert participants_by_id(space_id)[participant_id].muted is False

        janus.participant_mute(space_id=space_id, participant_id=participant_id)
        assert participants_by_id(space_id)[participant_id].muted is True

        janus.participant_unmute(space_id=space_id, participant_id=participant_id)
        listed = participants_by_id(space_id)[participant_id]
    assert listed.muted is False
    assert listed.display == "Carol"


# --- errors ----------------------------------------------------------------------


def test_mute_in_a_room_that_does_not_exist_raises_janus_error_with_the_plugin_code(space_id):
    with pytest.raises(JanusError) as excinfo:
        janus.participant_mute(space_id=space_id, participant_id=1)
    assert excinfo.value.code == janus.AUDIOBRIDGE_NO_SUCH_ROOM
    assert "mute" in str(excinfo.value)


def test_mute_of_someone_not_in_the_room_raises_janus_error(space_id):
    janus.stage_create(space_id=space_id)
    with pytest.raises(JanusError) as excinfo:
        janus.participant_mute(space_id=space_id, participant_id=424242)
    assert excinfo.value.code == janus.AUDIOBRIDGE_NO_SUCH_USER


def test_room_creation_without_the_admin_key_is_refused(settings, space_id):
    settings.JANUS_ADMIN_KEY = "wrong-key"
    with pytest.raises(JanusError) as excinfo:
        janus.stage_create(space_id=space_id)
    assert excinfo.value.code == janus.STREAMING_UNAUTHORIZED


def test_unknown_session_raises_janus_error_with_the_core_code():
    session_id = janus.session_create()
    janus.session_keepalive(session_id=session_id)
    janus.session_destroy(session_id=session_id)

    with pytest.raises(JanusError) as excinfo:
        janus.session_keepalive(session_id=session_id)
    assert excinfo.value.code == janus.ERROR_SESSION_NOT_FOUND


def test_wrong_api_secret_is_refused(settings):
    settings.JANUS_API_SECRET = "wrong"
    with pytest.raises(JanusError) as excinfo:
        janus.session_create()
    assert excinfo.value.code == 403


def test_unreachable_janus_raises_a_readable_janus_error(settings):
    settings.JANUS_URL = "http://127.0.0.1:9/janus"
    with pytest.raises(JanusError, match="unreachable.*JANUS_URL") as excinfo:
        janus.server_info()
    assert excinfo.value.code is None
