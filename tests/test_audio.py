"""rooms.audio without a browser: ICE servers, TURN credentials, the signalling relay rule."""

from __future__ import annotations

import base64
import hashlib
import hmac
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured

from rooms import audio

# --- TURN credentials (coturn REST API, use-auth-secret) ---------------------------------


def test_turn_username_is_expiry_colon_user_and_credential_is_base64_hmac_sha1():
    creds = audio.turn_credentials(user_id=42, secret="north-wind", ttl=21600, now=1_700_000_000)

    assert creds["username"] == "1700021600:42"
    # Computed independently: printf '1700021600:42' | openssl dgst -sha1 -hmac north-wind -binary | base64
    assert creds["credential"] == "293IDPc1ItRrNUTqLvB9I2GaLnU="


def test_turn_credential_is_what_coturn_recomputes_from_the_username():
    creds = audio.turn_credentials(user_id=7, secret="s3cret", ttl=60)
    expected = hmac.new(b"s3cret", creds["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(creds["credential"]) == expected


def test_turn_credentials_expire_after_the_ttl():
    creds = audio.turn_credentials(user_id=7, secret="s", ttl=600, now=1000.9)
    assert creds["username"].split(":") == ["1600", "7"]


def test_different_users_get_different_turn_credentials():
    a = audio.turn_credentials(user_id=1, secret="s", ttl=60, now=0)
    b = audio.turn_credentials(user_id=2, secret="s", ttl=60, now=0)
    assert a["credential"] != b["credential"]


def test_ice_servers_add_turn_with_credentials_when_a_secret_is_set(settings):
    settings.SPACES_ICE_SERVERS = '[{"urls": "stun:stun.example.org:3478"}]'
    settings.TURN_SECRET = "north-wind"
    settings.TURN_URLS = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"]
    settings.TURN_TTL = 21600

    servers = audio.ice_servers(user_id=42, now=1_700_000_000)

    assert servers == [
        {"urls": "stun:stun.example.org:3478"},
        {
            "urls": ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"],
            "username": "1700021600:42",
            "credential": "293IDPc1ItRrNUTqLvB9I2GaLnU=",
        },
    ]


def test_no_turn_entry_without_a_secret_or_without_urls(settings):
    settings.SPACES_ICE_SERVERS = "[]"
    settings.TURN_SECRET = ""
    settings.TURN_URLS = ["turn:turn.example.org:3478"]
    assert audio.ice_servers(user_id=1) == []
    settings.TURN_SECRET = "s"
    settings.TURN_URLS = []
    assert audio.ice_servers(user_id=1) == []


@pytest.mark.parametrize("raw", ["not json", '{"urls": "stun:x"}', '[{"url": "stun:x"}]'])
def test_malformed_ice_servers_setting_says_what_to_write(settings, raw):
    settings.SPACES_ICE_SERVERS = raw
    with pytest.raises(ImproperlyConfigured, match="SPACES_ICE_SERVERS"):
        audio.ice_servers(user_id=1)


def test_audio_config_is_p2p_without_janus_and_janus_with_it(settings):
    settings.SPACES_ICE_SERVERS = "[]"
    settings.TURN_SECRET = ""
    user = SimpleNamespace(pk=5)
    settings.JANUS_URL = ""
    assert audio.audio_config(space=None, user=user) == {"mode": "p2p", "iceServers": []}
    settings.JANUS_URL = "http://127.0.0.1:8088/janus"
    assert audio.audio_config(space=None, user=user)["mode"] == "janus"


# --- who may signal whom (peer-to-peer relay) --------------------------------------------


def person(user_id: int, role: str, *, space_id: int = 1, state: str = "live", removed: bool = False):
    return SimpleNamespace(
        user_id=user_id, role=role, space_id=space_id, space=SimpleNamespace(state=state), removed=removed
    )


@pytest.mark.parametrize("stage_role", ["host", "cohost", "speaker"])
def test_stage_member_and_listener_may_signal_each_other(stage_role):
    stage, listener = person(1, stage_role), person(2, "listener")
    assert audio.may_signal(sender=stage, recipient=listener)
    assert audio.may_signal(sender=listener, recipient=stage)


def test_stage_members_may_signal_each_other():
    assert audio.may_signal(sender=person(1, "host"), recipient=person(2, "speaker"))
    assert audio.may_signal(sender=person(2, "speaker"), recipient=person(3, "cohost"))


def test_listener_never_reaches_another_listener():
    assert not audio.may_signal(sender=person(1, "listener"), recipient=person(2, "listener"))


@pytest.mark.parametrize("who", ["sender", "recipient"])
def test_removed_participants_neither_send_nor_receive_signals(who):
    pair = {"sender": person(1, "host"), "recipient": person(2, "listener")}
    pair[who].removed = True
    assert not audio.may_signal(**pair)


def test_removed_is_also_read_from_a_removed_at_timestamp():
    sender = SimpleNamespace(user_id=1, role="listener", space_id=1, space=SimpleNamespace(state="live"))
    sender.removed_at = "2026-01-01T00:00:00Z"
    assert not audio.may_signal(sender=sender, recipient=person(2, "host"))


def test_no_signal_across_spaces():
    assert not audio.may_signal(
        sender=person(1, "host", space_id=1), recipient=person(2, "speaker", space_id=2)
    )


@pytest.mark.parametrize("state", ["scheduled", "ended", "cancelled"])
def test_no_signal_unless_the_space_is_live(state):
    assert not audio.may_signal(
        sender=person(1, "host", state=state), recipient=person(2, "listener", state=state)
    )


def test_nobody_signals_themselves():
    assert not audio.may_signal(sender=person(1, "host"), recipient=person(1, "host"))
