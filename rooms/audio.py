"""Audio for Spaces: what a browser needs to connect, who may signal whom, and Janus mode.

Two shapes, one browser engine (static/js/audio.js):

- **Peer-to-peer** (default). Browsers connect to each other; offers, answers and ICE
  candidates travel over the Space's websocket as ``signal`` frames, and the consumer
  relays one only when ``may_signal`` says the two people may exchange audio.
- **Janus** (``JANUS_URL`` set). Stage members send to the Space's AudioBridge room,
  listeners watch its Streaming mountpoint. The browser still signals over the websocket,
  to user id ``0`` (``MEDIA_SERVER``): ``JanusLink`` (one per websocket) talks to Janus
  for it, after checking the person's role in the database.

ICE servers come from ``SPACES_ICE_SERVERS``; with ``TURN_SECRET`` and ``TURN_URLS`` each
person also gets short-lived TURN credentials in coturn's REST format
(``use-auth-secret``): username ``"<expiry>:<user id>"``, credential
``base64(HMAC-SHA1(secret, username))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

STAGE_ROLES = ("host", "cohost", "speaker")
MEDIA_SERVER = 0
"""The ``to``/``from`` of signals exchanged with the media server (Janus mode) instead of a person."""

DEFAULT_TURN_TTL = 6 * 3600


# --- configuration for the page -------------------------------------------------------


def audio_mode() -> str:
    """``"janus"`` when scale mode is configured, else ``"p2p"``."""
    return "janus" if getattr(settings, "JANUS_URL", "") else "p2p"


def _configured_ice_servers() -> list[dict[str, Any]]:
    raw = getattr(settings, "SPACES_ICE_SERVERS", [])
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else []
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"SPACES_ICE_SERVERS is not valid JSON ({exc}); give a list such as "
                '[{"urls": "stun:stun.example.org:3478"}].'
            ) from exc
    if not isinstance(raw, list) or not all(isinstance(s, dict) and s.get("urls") for s in raw):
        raise ImproperlyConfigured(
            'SPACES_ICE_SERVERS must be a JSON list of objects with "urls", '
            'e.g. [{"urls": "stun:stun.example.org:3478"}].'
        )
    return [dict(server) for server in raw]


def turn_credentials(*, user_id: int, secret: str, ttl: int, now: float | None = None) -> dict[str, str]:
    """coturn REST-API credentials (``use-auth-secret``) valid for ``ttl`` seconds from ``now``.

    coturn checks the expiry in the username and recomputes the HMAC with its
    ``static-auth-secret``; nothing is stored on either side.
    """
    expiry = int(now if now is not None else time.time()) + int(ttl)
    username = f"{expiry}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return {"username": username, "credential": base64.b64encode(digest).decode("ascii")}


def ice_servers(*, user_id: int, now: float | None = None) -> list[dict[str, Any]]:
    """The RTCPeerConnection ``iceServers`` for one person: settings plus their TURN credentials."""
    servers = _configured_ice_servers()
    secret = getattr(settings, "TURN_SECRET", "")
    urls = list(getattr(settings, "TURN_URLS", []) or [])
    if secret and urls:
        ttl = int(getattr(settings, "TURN_TTL", DEFAULT_TURN_TTL))
        servers.append({"urls": urls, **turn_credentials(user_id=user_id, secret=secret, ttl=ttl, now=now)})
    return servers


def audio_config(*, space, user) -> dict[str, Any]:
    """What the Space page hands audio.js (rendered into ``#space-config`` as ``audio``)."""
    return {"mode": audio_mode(), "iceServers": ice_servers(user_id=user.pk)}


# --- the peer-to-peer relay rule -------------------------------------------------------


class _Participant(Protocol):
    """What ``may_signal`` reads of a participant (rooms.models.Participant)."""

    space_id: int
    user_id: int
    role: str


def _is_removed(participant: Any) -> bool:
    removed = getattr(participant, "removed", None)
    if removed is None:
        removed = getattr(participant, "removed_at", None) is not None
    return bool(removed)


def _is_live(participant: Any) -> bool:
    space = getattr(participant, "space", None)
    return space is not None and getattr(space, "state", None) == "live"


def may_signal(*, sender: _Participant, recipient: _Participant) -> bool:
    """Whether a WebRTC signal from ``sender`` may be relayed to ``recipient``.

    Audio flows between stage members and everyone else in the same live Space,
    so a signal passes only when both are in that Space, neither was removed, they
    are two different people, and at least one of them is on stage. A listener never
    reaches another listener; nobody reaches anyone in another Space.
    """
    if sender.space_id != recipient.space_id or sender.user_id == recipient.user_id:
        return False
    if _is_removed(sender) or _is_removed(recipient):
        return False
    if not _is_live(sender):
        return False
    return sender.role in STAGE_ROLES or recipient.role in STAGE_ROLES
