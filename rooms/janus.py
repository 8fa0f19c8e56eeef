"""Janus client for scale mode: Django owns every room, mountpoint and admission.

One Space is one *stage* in Janus:

- an AudioBridge room (id = Space id) that mixes the speakers. It only accepts
  joins that carry a token from its ``allowed`` list, and Django adds a speaker's
  token when the speaker is admitted (``speaker_admit``);
- a Streaming RTP mountpoint (id = Space id), audio only, Opus, behind a PIN
  that Django hands to listeners (``listener_admit``);
- an AudioBridge RTP forwarder that sends the room's mix to the mountpoint's
  port on 127.0.0.1, so one encoded stream serves every listener.

Room secrets, the mountpoint PIN and speakers' tokens are derived from
``SECRET_KEY`` with HMAC, so no table has to remember them and any Django process
can manage any stage. Rotating ``SECRET_KEY`` orphans live stages: end them first.

Every call is synchronous over Janus's plain HTTP API, with a timeout, and opens
a short-lived Janus session that it destroys on the way out: Django keeps no
Janus state between requests. Async code uses the ``a``-prefixed wrappers.

Plugin API reference: janus-gateway ``src/plugins/janus_audiobridge.c`` and
``janus_streaming.c`` (doc comments at the top of each file).
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async

logger = logging.getLogger(__name__)

AUDIOBRIDGE = "janus.plugin.audiobridge"
STREAMING = "janus.plugin.streaming"

# Janus core error codes (apierror.h).
ERROR_SESSION_NOT_FOUND = 458
ERROR_HANDLE_NOT_FOUND = 459
# AudioBridge error codes (janus_audiobridge.c).
AUDIOBRIDGE_NO_SUCH_ROOM = 485
AUDIOBRIDGE_ROOM_EXISTS = 486
AUDIOBRIDGE_UNAUTHORIZED = 489
AUDIOBRIDGE_NO_SUCH_USER = 492
# Streaming error codes (janus_streaming.c).
STREAMING_NO_SUCH_MOUNTPOINT = 455
STREAMING_CANT_CREATE = 456
STREAMING_UNAUTHORIZED = 457

SAMPLING_RATE = 48000
OPUS_PAYLOAD_TYPE = 111
LOOPBACK = "127.0.0.1"


class JanusError(Exception):
    """Janus refused a request or could not be reached.

    ``code`` is the plugin's ``error_code`` (e.g. 485 no such room) or the Janus core
    error code (e.g. 458 no such session); ``None`` when Janus did not answer at all.
    """

    def __init__(self, message: str, *, code: int | None = None, plugin: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.plugin = plugin


class JanusTimeout(JanusError):
    """Janus did not answer within the timeout (JANUS_TIMEOUT, or the call's own)."""


@dataclass(frozen=True)
class JanusConfig:
    url: str
    api_secret: str = ""
    admin_key: str = ""
    admin_url: str = ""
    admin_secret: str = ""
    timeout: float = 5.0


@dataclass(frozen=True)
class PluginHandle:
    session_id: int
    handle_id: int
    plugin: str
    url: str | None = None  # a relay's JANUS_RELAYS entry; None = JANUS_URL


@dataclass(frozen=True)
class PluginEvent:
    """An asynchronous plugin answer: its data and, for media negotiation, its JSEP."""

    data: dict[str, Any]
    jsep: dict[str, Any] | None = None


@dataclass(frozen=True)
class Stage:
    space_id: int
    room_id: int
    mountpoint_id: int
    rtp_port: int
    forwarder_id: int


@dataclass(frozen=True)
class SpeakerPass:
    """What a speaker's browser needs to join the AudioBridge room."""

    room_id: int
    token: str


@dataclass(frozen=True)
class ListenerPass:
    """What a listener's browser needs to watch the Streaming mountpoint."""

    mountpoint_id: int
    pin: str


@dataclass(frozen=True)
class Participant:
    id: int
    display: str
    muted: bool
    talking: bool
    setup: bool


# --- configuration -------------------------------------------------------------


def relay_urls() -> list[str]:
    """The Janus Streaming relays listeners are spread over (JANUS_RELAYS); empty = JANUS_URL only."""
    from django.conf import settings

    raw = getattr(settings, "JANUS_RELAYS", [])
    if isinstance(raw, str):
        raw = raw.split(",")
    return [url.strip().rstrip("/") for url in raw if url.strip()]


def relay_host(url: str) -> str:
    """Where a relay receives the AudioBridge's RTP forward: the host of its API URL."""
    return urllib.parse.urlsplit(url).hostname or LOOPBACK


def janus_config() -> JanusConfig:
    """Read the JANUS_* settings now (not at import), so tests can override them."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    url = getattr(settings, "JANUS_URL", "")
    if not url:
        raise ImproperlyConfigured(
            "JANUS_URL is not set, so scale mode is off; set it (e.g. http://127.0.0.1:8088/janus) "
            "or keep audio peer-to-peer."
        )
    return JanusConfig(
        url=url.rstrip("/"),
        api_secret=getattr(settings, "JANUS_API_SECRET", ""),
        admin_key=getattr(settings, "JANUS_ADMIN_KEY", ""),
        admin_url=getattr(settings, "JANUS_ADMIN_URL", "").rstrip("/"),
        admin_secret=getattr(settings, "JANUS_ADMIN_SECRET", ""),
        timeout=float(getattr(settings, "JANUS_TIMEOUT", 5.0)),
    )


def _derive(purpose: str, value: str, length: int = 32) -> str:
    from django.utils.crypto import salted_hmac

    return salted_hmac(f"rooms.janus.{purpose}", value, algorithm="sha256").hexdigest()[:length]


def _room_secret(space_id: int) -> str:
    return _derive("room-secret", str(space_id))


def _mountpoint_secret(space_id: int) -> str:
    return _derive("mountpoint-secret", str(space_id))


def _mountpoint_pin(space_id: int) -> str:
    return _derive("mountpoint-pin", str(space_id), length=24)


def speaker_token(*, space_id: int, user_id: int) -> str:
    """The AudioBridge join token of one user on one stage (stable, so it can be revoked)."""
    return _derive("speaker-token", f"{space_id}:{user_id}")


# --- transport -----------------------------------------------------------------


def _send(url: str, body: dict[str, Any] | None, *, timeout: float) -> Any:
    """POST `body` (or GET when None) and decode the JSON; Janus-level errors become JanusError."""
    where = url.split("?", 1)[0]  # The query may carry the api secret: keep it out of messages.
    if not url.startswith(("http://", "https://")):
        raise JanusError(f"Janus URLs must start with http:// or https://, not {where!r}; check JANUS_URL.")
    data = json.dumps(body).encode() if body is not None else None
    # S310: the scheme was checked just above.
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            payload = response.read()
    except urllib.error.HTTPError as exc:
        raise JanusError(f"Janus answered HTTP {exc.code} at {where}; check JANUS_URL.", code=exc.code)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError | socket.timeout):
            raise JanusTimeout(f"Janus at {where} did not answer within {timeout:.0f}s.")
        raise JanusError(f"Janus at {where} is unreachable ({reason}); is it running and is JANUS_URL right?")
    try:
        answer = json.loads(payload)
    except ValueError:
        raise JanusError(
            f"Janus at {where} sent something that is not JSON; is JANUS_URL the /janus endpoint?"
        )
    if isinstance(answer, dict) and answer.get("janus") == "error":
        error = answer.get("error", {})
        raise JanusError(
            f"Janus refused the request: {error.get('reason', 'unknown error')}", code=error.get("code")
        )
    return answer


def _janus(path: str, body: dict[str, Any], *, url: str | None = None, timeout: float | None = None) -> Any:
    """A request to JANUS_URL, or to `url` (a relay: same API secret and admin key)."""
    config = janus_config()
    body = {**body, "transaction": secrets.token_hex(8)}
    if config.api_secret:
        body["apisecret"] = config.api_secret
    logger.debug("janus %s %s", path or "/", body.get("janus"))
    return _send(f"{url or config.url}{path}", body, timeout=timeout or config.timeout)


def server_info(*, url: str | None = None, timeout: float | None = None) -> dict[str, Any]:
    """Janus's `info` answer (version, loaded plugins and transports)."""
    return _janus("", {"janus": "info"}, url=url, timeout=timeout)


def server_sessions() -> list[int]:
    """Ids of the sessions Janus holds now, via the Admin API (JANUS_ADMIN_URL, JANUS_ADMIN_SECRET)."""
    config = janus_config()
    if not config.admin_url:
        raise JanusError("JANUS_ADMIN_URL is not set, so the Janus Admin API cannot be asked.")
    body = {
        "janus": "list_sessions",
        "transaction": secrets.token_hex(8),
        "admin_secret": config.admin_secret,
    }
    return list(_send(config.admin_url, body, timeout=config.timeout).get("sessions", []))


# --- sessions and handles ------------------------------------------------------


def session_create(*, url: str | None = None) -> int:
    return int(_janus("", {"janus": "create"}, url=url)["data"]["id"])


def session_keepalive(*, session_id: int) -> None:
    """Keep a long-lived session alive; Janus drops idle ones after `session_timeout` (60 s)."""
    _janus(f"/{session_id}", {"janus": "keepalive"})


def session_destroy(*, session_id: int, url: str | None = None) -> None:
    """Destroy a session and detach its handles; a session that is already gone is fine."""
    try:
        _janus(f"/{session_id}", {"janus": "destroy"}, url=url)
    except JanusError as exc:
        if exc.code != ERROR_SESSION_NOT_FOUND:
            raise


def handle_attach(*, session_id: int, plugin: str, url: str | None = None) -> PluginHandle:
    answer = _janus(f"/{session_id}", {"janus": "attach", "plugin": plugin}, url=url)
    return PluginHandle(session_id=session_id, handle_id=int(answer["data"]["id"]), plugin=plugin, url=url)


def handle_detach(*, handle: PluginHandle) -> None:
    try:
        _janus(f"/{handle.session_id}/{handle.handle_id}", {"janus": "detach"}, url=handle.url)
    except JanusError as exc:
        if exc.code not in (ERROR_SESSION_NOT_FOUND, ERROR_HANDLE_NOT_FOUND):
            raise


def _plugin_data(handle: PluginHandle, request: str, data: dict[str, Any]) -> dict[str, Any]:
    if "error_code" in data:
        name = handle.plugin.rsplit(".", 1)[-1]
        reason = data.get("error", "no reason given")
        raise JanusError(
            f"Janus {name} refused {request!r} ({data['error_code']}): {reason}",
            code=int(data["error_code"]),
            plugin=handle.plugin,
        )
    return data


def handle_request(*, handle: PluginHandle, body: dict[str, Any]) -> dict[str, Any]:
    """A synchronous plugin request (create, destroy, allowed, mute, info...); returns the plugin's data."""
    answer = _janus(
        f"/{handle.session_id}/{handle.handle_id}", {"janus": "message", "body": body}, url=handle.url
    )
    if answer.get("janus") != "success":
        raise JanusError(
            f"Janus answered {answer.get('janus')!r} to {body.get('request')!r}, which is not synchronous; "
            "use handle_message.",
            plugin=handle.plugin,
        )
    return _plugin_data(handle, str(body.get("request")), answer["plugindata"]["data"])


def session_events(
    *, session_id: int, max_events: int = 10, timeout: float | None = None, url: str | None = None
) -> list[dict[str, Any]]:
    """Long-poll the session for pending events; an empty list when none came within `timeout`."""
    config = janus_config()
    query: dict[str, Any] = {"maxev": max_events, "rid": secrets.token_hex(4)}
    if config.api_secret:
        query["apisecret"] = config.api_secret
    poll_url = f"{url or config.url}/{session_id}?{urllib.parse.urlencode(query)}"
    try:
        answer = _send(poll_url, None, timeout=timeout if timeout is not None else config.timeout)
    except JanusTimeout:
        return []
    events = answer if isinstance(answer, list) else [answer]
    return [event for event in events if event.get("janus") != "keepalive"]


def handle_message(
    *,
    handle: PluginHandle,
    body: dict[str, Any],
    jsep: dict[str, Any] | None = None,
    timeout: float | None = None,
) -> PluginEvent:
    """An asynchronous plugin request (join, watch, configure...): send it, wait for its event.

    Events of the session that answer other transactions are dropped: this is for
    server-side one-shots and tests, not an event loop for a live participant.
    """
    config = janus_config()
    message: dict[str, Any] = {"janus": "message", "body": body}
    if jsep is not None:
        message["jsep"] = jsep
    answer = _janus(f"/{handle.session_id}/{handle.handle_id}", message, url=handle.url)
    if answer.get("janus") == "success":  # Janus may answer asynchronous requests at once.
        return PluginEvent(_plugin_data(handle, str(body.get("request")), answer["plugindata"]["data"]))
    transaction = answer.get("transaction")
    wait = timeout if timeout is not None else config.timeout
    deadline = time.monotonic() + wait
    while (remaining := deadline - time.monotonic()) > 0:
        for event in session_events(session_id=handle.session_id, timeout=remaining, url=handle.url):
            if event.get("janus") == "event" and event.get("transaction") == transaction:
                data = _plugin_data(handle, str(body.get("request")), event["plugindata"]["data"])
                return PluginEvent(data=data, jsep=event.get("jsep"))
    raise JanusTimeout(
        f"Janus did not answer {body.get('request')!r} within {wait:.0f}s.", plugin=handle.plugin
    )


@contextmanager
def plugin_handle(*, plugin: str, url: str | None = None) -> Iterator[PluginHandle]:
    """A fresh session attached to `plugin`, destroyed on exit (which detaches the handle)."""
    session_id = session_create(url=url)
    try:
        yield handle_attach(session_id=session_id, plugin=plugin, url=url)
    finally:
        try:
            session_destroy(session_id=session_id, url=url)
        except JanusError:
            # Janus reaps idle sessions after session_timeout; the caller's own error matters more.
            logger.warning("could not destroy Janus session %s", session_id, exc_info=True)


def _audiobridge(body: dict[str, Any]) -> dict[str, Any]:
    with plugin_handle(plugin=AUDIOBRIDGE) as handle:
        return handle_request(handle=handle, body=body)


def _streaming(body: dict[str, Any], *, url: str | None = None) -> dict[str, Any]:
    with plugin_handle(plugin=STREAMING, url=url) as handle:
        return handle_request(handle=handle, body=body)


def _room_request(request: str, *, space_id: int, **fields: Any) -> dict[str, Any]:
    """An AudioBridge request that needs the room's secret."""
    return _audiobridge({"request": request, "room": space_id, "secret": _room_secret(space_id), **fields})


# --- stages --------------------------------------------------------------------


def mountpoint_info(*, space_id: int, url: str | None = None) -> dict[str, Any]:
    """The Streaming plugin's full `info` on the stage's mountpoint (with the secret: pin, port,
    viewers), on JANUS_URL or on the relay `url`."""
    answer = _streaming({"request": "info", "id": space_id, "secret": _mountpoint_secret(space_id)}, url=url)
    return answer["info"]


def _mountpoint_ensure(*, space_id: int, description: str, bind_host: str, url: str | None = None) -> int:
    """Create the mountpoint unless it exists; return the UDP port it receives RTP on."""
    config = janus_config()
    try:
        created = _streaming(
            {
                "request": "create",
                "admin_key": config.admin_key,
                "type": "rtp",
                "id": space_id,
                "name": f"space-{space_id}",
                "description": description,
                "secret": _mountpoint_secret(space_id),
                "pin": _mountpoint_pin(space_id),
                "is_private": True,
                "permanent": False,
                "media": [
                    {
                        "type": "audio",
                        "mid": "a",
                        "label": "stage",
                        "port": 0,  # Janus picks one from the plugin's rtp_port_range.
                        "iface": bind_host,
                        "pt": OPUS_PAYLOAD_TYPE,
                        "codec": "opus",
                    }
                ],
            },
            url=url,
        )
    except JanusError as exc:
        if exc.code != STREAMING_CANT_CREATE:
            raise
        # Already there (a second stage_create, or a race with another process).
        return int(mountpoint_info(space_id=space_id, url=url)["media"][0]["port"])
    return int(created["stream"]["ports"][0]["port"])


def _room_ensure(*, space_id: int, description: str) -> None:
    config = janus_config()
    try:
        _audiobridge(
            {
                "request": "create",
                "admin_key": config.admin_key,
                "room": space_id,
                "description": description,
                "secret": _room_secret(space_id),
                "is_private": True,
                "permanent": False,
                # An empty list still turns the token check on: nobody joins until admitted.
                "allowed": [],
                "sampling_rate": SAMPLING_RATE,
                "audiolevel_ext": True,
                "audiolevel_event": True,
            }
        )
    except JanusError as exc:
        if exc.code != AUDIOBRIDGE_ROOM_EXISTS:
            raise


def stage_forwarders(*, space_id: int) -> list[dict[str, Any]]:
    """The room's RTP forwarders as Janus lists them (stream_id, ip, port, codec, ptype...)."""
    answer = _room_request("listforwarders", space_id=space_id)
    return list(answer.get("rtp_forwarders", []))


def _forwarder_ensure(*, space_id: int, host: str, port: int) -> int:
    for forwarder in stage_forwarders(space_id=space_id):
        if forwarder.get("ip") == host and int(forwarder.get("port", 0)) == port:
            return int(forwarder["stream_id"])
    answer = _room_request(
        "rtp_forward",
        space_id=space_id,
        admin_key=janus_config().admin_key,
        host=host,
        host_family="ipv4",
        port=port,
        codec="opus",
        ptype=OPUS_PAYLOAD_TYPE,
        # Listeners who arrive before anyone speaks still get a running stream.
        always_on=True,
    )
    return int(answer["stream_id"])


def stage_create(*, space_id: int, description: str = "", forward_host: str = LOOPBACK) -> Stage:
    """Create (or complete) the stage of a Space: mountpoint, AudioBridge room, forwarder between them.

    Idempotent: calling it again returns the same stage without duplicating anything.
    `forward_host` is where the Streaming plugin receives the mix; it is the Janus
    that runs the room unless you chain instances.
    """
    description = description or f"Space {space_id}"
    port = _mountpoint_ensure(space_id=space_id, description=description, bind_host=forward_host)
    _room_ensure(space_id=space_id, description=description)
    forwarder_id = _forwarder_ensure(space_id=space_id, host=forward_host, port=port)
    for relay in relay_urls():
        try:
            relay_stage_ensure(space_id=space_id, url=relay, description=description)
        except JanusError as exc:
            # A relay that is down gets its mountpoint when the first listener is sent to it.
            logger.warning("could not set up relay %s for Space %s: %s", relay, space_id, exc)
    return Stage(
        space_id=space_id, room_id=space_id, mountpoint_id=space_id, rtp_port=port, forwarder_id=forwarder_id
    )


def relay_stage_ensure(*, space_id: int, url: str, description: str = "") -> int:
    """Give the relay `url` the stage's mountpoint and forward the room's mix to it; returns the
    forwarder id. Idempotent, like stage_create (which must have built the room first)."""
    host = relay_host(url)
    port = _mountpoint_ensure(
        space_id=space_id, description=description or f"Space {space_id}", bind_host=host, url=url
    )
    return _forwarder_ensure(space_id=space_id, host=host, port=port)


def stage_destroy(*, space_id: int) -> None:
    """Remove the room (which stops its forwarders and drops speakers) and the mountpoint.

    Idempotent: a stage that is already gone, or half gone, is fine.
    """
    try:
        _room_request("destroy", space_id=space_id, permanent=False)
    except JanusError as exc:
        if exc.code != AUDIOBRIDGE_NO_SUCH_ROOM:
            raise
    for url in [None, *relay_urls()]:
        try:
            _streaming(
                {
                    "request": "destroy",
                    "id": space_id,
                    "secret": _mountpoint_secret(space_id),
                    "permanent": False,
                },
                url=url,
            )
        except JanusError as exc:
            if url is not None and exc.code != STREAMING_NO_SUCH_MOUNTPOINT:
                # A relay that is down lost its mountpoints with its process.
                logger.warning("could not remove Space %s from relay %s: %s", space_id, url, exc)
            elif exc.code != STREAMING_NO_SUCH_MOUNTPOINT:
                raise


def stage_exists(*, space_id: int) -> bool:
    """Whether the AudioBridge room of the Space exists."""
    return bool(_audiobridge({"request": "exists", "room": space_id}).get("exists"))


# --- admission -----------------------------------------------------------------


def room_allowed(*, space_id: int, action: str, tokens: list[str]) -> list[str]:
    """Edit the room's `allowed` list (action add/remove/enable/disable); return the whole list."""
    fields: dict[str, Any] = {"action": action}
    if action in ("add", "remove"):
        fields["allowed"] = tokens
    return list(_room_request("allowed", space_id=space_id, **fields).get("allowed", []))


def speaker_admit(*, space_id: int, user_id: int) -> SpeakerPass:
    """Let a user join the stage's room; the browser joins with the returned token."""
    token = speaker_token(space_id=space_id, user_id=user_id)
    room_allowed(space_id=space_id, action="add", tokens=[token])
    return SpeakerPass(room_id=space_id, token=token)


def speaker_revoke(*, space_id: int, user_id: int, participant_id: int | None = None) -> None:
    """Stop a user from (re)joining the room, and kick their current participant if given.

    Removing the token alone does not end a join that already happened.
    """
    token = speaker_token(space_id=space_id, user_id=user_id)
    room_allowed(space_id=space_id, action="remove", tokens=[token])
    if participant_id is not None:
        participant_kick(space_id=space_id, participant_id=participant_id)


def listener_admit(*, space_id: int) -> ListenerPass:
    """What a listener needs to watch the stage; no Janus call, the PIN is derived."""
    return ListenerPass(mountpoint_id=space_id, pin=_mountpoint_pin(space_id))


# --- participants --------------------------------------------------------------


def stage_participants(*, space_id: int) -> list[Participant]:
    answer = _audiobridge({"request": "listparticipants", "room": space_id})
    return [
        Participant(
            id=int(p["id"]),
            display=p.get("display", ""),
            muted=bool(p.get("muted")),
            talking=bool(p.get("talking")),
            setup=bool(p.get("setup")),
        )
        for p in answer.get("participants", [])
    ]


def participant_mute(*, space_id: int, participant_id: int) -> None:
    """Mute a participant server-side (host or co-host muting a speaker)."""
    _room_request("mute", space_id=space_id, id=participant_id)


def participant_unmute(*, space_id: int, participant_id: int) -> None:
    """Unmute a participant server-side.

    DESIGN.md: hosts never unmute anyone. Services call this only on the speaker's
    own request, e.g. to lift a mute that Django itself applied.
    """
    _room_request("unmute", space_id=space_id, id=participant_id)


def participant_kick(*, space_id: int, participant_id: int) -> None:
    """Remove a participant from the room; a participant already gone is fine."""
    try:
        _room_request("kick", space_id=space_id, id=participant_id)
    except JanusError as exc:
        if exc.code != AUDIOBRIDGE_NO_SUCH_USER:
            raise


# --- async wrappers (consumers) --------------------------------------------------
# Each runs the synchronous call in a worker thread; Janus calls never touch the database.

astage_create = sync_to_async(stage_create, thread_sensitive=False)
astage_destroy = sync_to_async(stage_destroy, thread_sensitive=False)
aspeaker_admit = sync_to_async(speaker_admit, thread_sensitive=False)
aspeaker_revoke = sync_to_async(speaker_revoke, thread_sensitive=False)
aparticipant_mute = sync_to_async(participant_mute, thread_sensitive=False)
aparticipant_unmute = sync_to_async(participant_unmute, thread_sensitive=False)


# --- recording -----------------------------------------------------------------
#
# The AudioBridge records its own mix as WAV (`enable_recording`), into JANUS_RECORDING_DIR: a folder
# the Janus host writes and the Celery workers read (the same machine, or a shared volume).


def recording_dir() -> Path:
    from django.conf import settings

    return Path(settings.JANUS_RECORDING_DIR)


def room_recording(*, space_id: int, on: bool, name: str = "") -> None:
    """Start recording the room's mix into `name` (in JANUS_RECORDING_DIR), or stop it."""
    fields: dict[str, Any] = {"record": on}
    if on:
        recording_dir().mkdir(parents=True, exist_ok=True)
        fields.update(record_file=name, record_dir=str(recording_dir()))
    _room_request("enable_recording", space_id=space_id, **fields)


def recording_files_delete(*, names: list[str]) -> None:
    for name in names:
        (recording_dir() / Path(name).name).unlink(missing_ok=True)
