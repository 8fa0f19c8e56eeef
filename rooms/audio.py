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

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from . import janus, relays

logger = logging.getLogger(__name__)

STAGE_ROLES = ("host", "cohost", "speaker")
MEDIA_SERVER = 0
"""The ``to``/``from`` of signals exchanged with the media server (Janus mode) instead of a person."""

DEFAULT_TURN_TTL = 6 * 3600
AUDIOBRIDGE_PREBUFFER = 2
"""Packets (20 ms each) the AudioBridge queues per speaker before mixing them. Janus's default
of 6 puts 120 ms in front of every listener; the browsers' own jitter buffers absorb network
jitter already, so two is enough (docs/benchmarks.md, "Audio latency")."""


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


def turn_credentials(
    *, user_id: int | str, secret: str, ttl: int, now: float | None = None
) -> dict[str, str]:
    """coturn REST-API credentials (``use-auth-secret``) valid for ``ttl`` seconds from ``now``.

    coturn checks the expiry in the username and recomputes the HMAC with its
    ``static-auth-secret``; nothing is stored on either side.
    """
    expiry = int(now if now is not None else time.time()) + int(ttl)
    username = f"{expiry}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return {"username": username, "credential": base64.b64encode(digest).decode("ascii")}


def ice_servers(*, user_id: int | str, now: float | None = None) -> list[dict[str, Any]]:
    """The RTCPeerConnection ``iceServers`` for one person: settings plus their TURN credentials."""
    servers = _configured_ice_servers()
    secret = getattr(settings, "TURN_SECRET", "")
    urls = list(getattr(settings, "TURN_URLS", []) or [])
    if secret and urls:
        ttl = int(getattr(settings, "TURN_TTL", DEFAULT_TURN_TTL))
        servers.append({"urls": urls, **turn_credentials(user_id=user_id, secret=secret, ttl=ttl, now=now)})
    return servers


def audio_config(*, space, user, guest_key: str = "") -> dict[str, Any]:
    """What the Space page hands audio.js (rendered into ``#space-config`` as ``audio``). A guest's
    TURN username names them by their guest key's start instead of a user id."""
    who = user.pk if getattr(user, "is_authenticated", False) else f"guest-{guest_key[:12]}"
    return {"mode": audio_mode(), "iceServers": ice_servers(user_id=who)}


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


# --- stages: one per live Space in Janus mode ------------------------------------------------------


def stage_open(*, space_id: int) -> None:
    """Create the Space's Janus stage (Janus mode; a no-op peer-to-peer). Called on commit when a
    Space goes live. A failure is logged, not raised: the Space is live either way, and the first
    speaker or listener to connect builds the stage again (``stage_create`` is idempotent)."""
    if audio_mode() != "janus":
        return
    try:
        janus.stage_create(space_id=space_id)
    except janus.JanusError:
        logger.exception("could not create the Janus stage of Space %s; it will be retried on join", space_id)


def stage_close(*, space_id: int) -> None:
    """Destroy the Space's Janus stage when it ends (speakers are dropped, listeners' stream stops)."""
    if audio_mode() != "janus":
        return
    try:
        janus.stage_destroy(space_id=space_id)
    except janus.JanusError:
        logger.exception("could not destroy the Janus stage of Space %s", space_id)


# --- the server's half of one websocket's audio --------------------------------------------------
#
# The consumer makes one per socket (``socket_audio``) and tells it three things: every room
# event it delivers (``room_event``), every ``signal`` addressed to ``MEDIA_SERVER``
# (``signal``), and that the socket closed (``close``).

Send = Callable[[dict[str, Any]], Awaitable[None]]


def socket_audio(*, space, user, send: Send, guest=None) -> PeerSocketAudio | JanusSocketAudio:
    """`guest`: the GuestConnection of a socket without an account (it only ever listens)."""
    if audio_mode() == "janus":
        return JanusSocketAudio(space=space, user=user, send=send, guest=guest)
    return PeerSocketAudio(space=space, user=user, send=send, guest=guest)


class PeerSocketAudio:
    """Peer-to-peer: browsers negotiate with each other; the server only tells a browser to hang up
    on a stage member who left or someone removed, so a connection never outlives a person's place
    here. (For listeners and guests who left, the page hangs up itself on ``listeners_left``: one
    frame a second for the whole audience rather than a hang-up frame per leave per socket.)"""

    def __init__(self, *, space, user, send: Send, guest=None) -> None:
        self.space = space
        self.user = user
        self.me = guest.signal_id if guest is not None else user.pk
        self._send = send
        self._tasks: set[asyncio.Task] = set()

    def room_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "participant_left" and event.get("user_id") != self.me:
            bye = {"type": "signal", "from": event["user_id"], "kind": "ice", "data": {"bye": True}}
            _spawn(self._tasks, self._send(bye))

    async def signal(self, *, kind: str, data: dict[str, Any]) -> None:
        await self._send(
            {
                "type": "signal",
                "from": MEDIA_SERVER,
                "kind": "ice",
                "data": {"id": data.get("id"), "error": "This Space's audio is peer-to-peer."},
            }
        )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def _spawn(tasks: set[asyncio.Task], coroutine: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(coroutine)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


class JanusHub:
    """This process's one session on one Janus (JANUS_URL, or a relay of JANUS_RELAYS): the handles
    of every local socket hang off it, and one thread long-polls it and hands each event to the
    socket that owns the handle (or to the request waiting for it). One poller per process and
    server, not one per speaker or listener."""

    POLL_SECONDS = 40.0  # longer than Janus's own 30 s long-poll, which then answers "keepalive"

    def __init__(self, loop: asyncio.AbstractEventLoop, url: str | None = None) -> None:
        self.loop = loop
        self.url = url
        self.session_id: int | None = None
        self.owners: dict[int, JanusSocketAudio] = {}
        self.pending: dict[str, asyncio.Future] = {}
        self._lock = asyncio.Lock()

    # Janus's HTTP API with our own transaction ids, so the poller can route the answers.
    # rooms.janus.handle_message polls for its own answer, which would steal other sockets' events.
    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        config = janus.janus_config()
        if config.api_secret:
            body = {**body, "apisecret": config.api_secret}
        return janus._send(f"{self.url or config.url}{path}", body, timeout=config.timeout)

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self._post, path, body)

    async def session(self) -> int:
        async with self._lock:
            if self.session_id is None:
                session_id = int(
                    (await self._call("", {"janus": "create", "transaction": _tx()}))["data"]["id"]
                )
                self.session_id = session_id
                threading.Thread(
                    target=self._poll, args=(session_id,), daemon=True, name=f"janus-poll-{session_id}"
                ).start()
            return self.session_id

    def _poll(self, session_id: int) -> None:
        while self.session_id == session_id:
            try:
                events = janus.session_events(
                    session_id=session_id, max_events=50, timeout=self.POLL_SECONDS, url=self.url
                )
            except janus.JanusError as exc:
                logger.warning("Janus session %s on %s lost: %s", session_id, self.url or "JANUS_URL", exc)
                self._soon(self._lost, session_id)
                return
            for event in events:
                self._soon(self._dispatch, event)

    def _soon(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the event loop is gone (process shutting down)
            self.session_id = None

    def relay_down(self, url: str) -> None:
        """The relay monitor gave up on this hub's server: move its sockets elsewhere now."""
        if url == self.url and self.session_id is not None:
            self._lost(self.session_id)

    def _lost(self, session_id: int) -> None:
        if self.session_id != session_id:
            return
        if self.url is not None:
            relays.relay_monitor().mark_down(self.url)
        self.session_id = None
        for future in self.pending.values():
            if not future.done():
                future.set_exception(janus.JanusError("The Janus session was lost."))
        for owner in set(self.owners.values()):
            owner.janus_lost()
        self.owners.clear()

    def _dispatch(self, event: dict[str, Any]) -> None:
        future = self.pending.get(event.get("transaction", ""))
        if future is not None and event.get("janus") == "event" and not future.done():
            future.set_result(event)
            return
        owner = self.owners.get(event.get("sender"))
        if owner is not None:
            owner.janus_event(event)

    async def attach(self, plugin: str, owner: JanusSocketAudio) -> int:
        session_id = await self.session()
        answer = await self._call(
            f"/{session_id}", {"janus": "attach", "plugin": plugin, "transaction": _tx()}
        )
        handle_id = int(answer["data"]["id"])
        self.owners[handle_id] = owner
        return handle_id

    async def detach(self, handle_id: int) -> None:
        self.owners.pop(handle_id, None)
        if self.session_id is None:
            return
        try:
            await self._call(f"/{self.session_id}/{handle_id}", {"janus": "detach", "transaction": _tx()})
        except janus.JanusError:
            pass  # already gone with its session, or never fully attached

    async def request(
        self, handle_id: int, body: dict[str, Any], *, jsep: dict | None = None, timeout: float = 10.0
    ) -> tuple[dict[str, Any], dict | None]:
        """An asynchronous plugin request; returns the plugin's data and JSEP from its event."""
        transaction = _tx()
        future = self.loop.create_future()
        self.pending[transaction] = future
        message: dict[str, Any] = {"janus": "message", "body": body, "transaction": transaction}
        if jsep is not None:
            message["jsep"] = jsep
        try:
            answer = await self._call(f"/{self.session_id}/{handle_id}", message)
            if answer.get("janus") != "success":
                answer = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise janus.JanusTimeout(f"Janus did not answer {body.get('request')!r} within {timeout:.0f}s.")
        finally:
            self.pending.pop(transaction, None)
        data = answer["plugindata"]["data"]
        if "error_code" in data:
            raise janus.JanusError(
                f"Janus refused {body.get('request')!r}: {data.get('error')}", code=int(data["error_code"])
            )
        return data, answer.get("jsep")

    async def trickle(self, handle_id: int, candidate: dict[str, Any] | None) -> None:
        body = {"janus": "trickle", "transaction": _tx(), "candidate": candidate or {"completed": True}}
        await self._call(f"/{self.session_id}/{handle_id}", body)


def _tx() -> str:
    return secrets.token_hex(8)


_janus_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str | None, JanusHub]] = (
    weakref.WeakKeyDictionary()
)


def janus_hub(url: str | None = None) -> JanusHub:
    """This event loop's hub for JANUS_URL (``url=None``) or for one relay."""
    loop = asyncio.get_running_loop()
    hubs = _janus_hubs.setdefault(loop, {})
    hub = hubs.get(url)
    if hub is None:
        hub = hubs[url] = JanusHub(loop, url)
        if url is not None:
            relays.relay_monitor().on_down.append(hub.relay_down)
    return hub


def _member(space_id: int, user_id: int):
    """The person's Participant row if they may have audio in this live Space now, else None."""
    from .models import Participant, Space

    return (
        Participant.objects.filter(
            space_id=space_id, user_id=user_id, removed_at=None, space__state=Space.State.LIVE
        )
        .only("role", "muted")
        .first()
    )


def _guest_listening(space_id: int, guest_pk: int):
    """The guest's socket row if it may still listen to this live Space, else None."""
    from .access import guest_refusal
    from .models import GuestConnection

    guest = GuestConnection.objects.select_related("space").filter(pk=guest_pk, space_id=space_id).first()
    return guest if guest is not None and guest_refusal(space=guest.space) is None else None


class JanusSocketAudio:
    """Janus mode: talks to Janus for one browser. A stage member's offer joins the Space's
    AudioBridge room (with the token Django admits them with); anyone else's ``watch`` gets the
    Streaming mountpoint's offer. The role is read from the database on every join, a demotion
    or removal kicks the speaker out of the room at once, a mute is applied in the room itself
    (a modified page can't unmute itself past it), and the room's talking events become
    ``speaking`` for this person."""

    def __init__(self, *, space, user, send: Send, guest=None) -> None:
        self.space = space
        self.user = user
        self.guest = guest
        self._send = send
        self.handle_id: int | None = None
        self.shape: str | None = None  # "publish" or "watch"
        self.link_id: str | None = None  # the browser's connection id (audio.js)
        self.participant_id: int | None = None  # in the AudioBridge room, while publishing
        self.hub: JanusHub | None = None  # the server the handle lives on
        self.counted_on: str | None = None  # the relay this socket's watch is counted on
        self._tasks: set[asyncio.Task] = set()
        self._lock = asyncio.Lock()
        self.closed = False

    # --- from the browser ---------------------------------------------------------------

    async def signal(self, *, kind: str, data: dict[str, Any]) -> None:
        link_id = data.get("id")
        if not isinstance(link_id, str) or not 0 < len(link_id) <= 64:
            await self._refuse(None, "Each audio signal needs the id of its connection.")
            return
        async with self._lock:
            try:
                if kind == "offer":
                    await self._publish(link_id, data.get("sdp"))
                elif kind == "watch":
                    await self._watch(link_id)
                elif link_id != self.link_id or self.handle_id is None or self.hub is None:
                    return  # about a connection we already replaced
                elif kind == "answer" and self.shape == "watch":
                    await self.hub.request(self.handle_id, {"request": "start"}, jsep=data.get("sdp"))
                elif kind == "ice" and data.get("bye"):
                    await self._hangup()
                elif kind == "ice":
                    await self.hub.trickle(self.handle_id, data.get("candidate"))
            except janus.JanusError as exc:
                logger.warning(
                    "Janus %s for user %s in Space %s failed: %s", kind, self.user.pk, self.space.pk, exc
                )
                await self._hangup()
                await self._refuse(link_id, "The audio server didn't answer. Reconnecting…")

    async def _publish(self, link_id: str, sdp: Any) -> None:
        hub = janus_hub()
        if link_id == self.link_id and self.shape == "publish" and self.handle_id is not None:
            # A new offer on the same connection (ICE restart).
            _, answer = await hub.request(self.handle_id, {"request": "configure"}, jsep=sdp)
            await self._answer(link_id, answer)
            return
        await self._hangup()
        if self.guest is not None:
            await self._refuse(link_id, "Only people on stage can speak.")
            return
        member = await database_sync_to_async(_member)(self.space.pk, self.user.pk)
        if member is None or member.role not in STAGE_ROLES:
            await self._refuse(link_id, "Only people on stage can speak.")
            return
        speaker = await _ensure_stage(janus.speaker_admit, space_id=self.space.pk, user_id=self.user.pk)
        self.handle_id = await hub.attach(janus.AUDIOBRIDGE, self)
        self.hub = hub
        self.shape, self.link_id = "publish", link_id
        body = {
            "request": "join",
            "room": speaker.room_id,
            "token": speaker.token,
            "display": f"user:{self.user.pk}",
            "muted": bool(member.muted),
            "prebuffer": AUDIOBRIDGE_PREBUFFER,
        }
        data, answer = await hub.request(self.handle_id, body, jsep=sdp)
        self.participant_id = int(data["id"]) if "id" in data else None
        if answer is None:
            _, answer = await hub.request(self.handle_id, {"request": "configure"}, jsep=sdp)
        await self._answer(link_id, answer)

    async def _watch(self, link_id: str) -> None:
        await self._hangup()
        if self.guest is not None:
            member = await database_sync_to_async(_guest_listening)(self.space.pk, self.guest.pk)
        else:
            member = await database_sync_to_async(_member)(self.space.pk, self.user.pk)
        if member is None:
            await self._refuse(link_id, "You aren't in this Space.")
            return
        await _ensure_stage(janus.stage_exists, space_id=self.space.pk)
        listener = janus.listener_admit(space_id=self.space.pk)
        relay = await relays.relay_for_listener()
        hub = janus_hub(relay)
        try:
            self.handle_id = await hub.attach(janus.STREAMING, self)
        except janus.JanusError as exc:
            if relay is not None and exc.code is None:  # unreachable: don't wait for the monitor
                relays.relay_monitor().mark_down(relay)
            raise
        self.hub = hub
        self.shape, self.link_id = "watch", link_id
        watch = {"request": "watch", "id": listener.mountpoint_id, "pin": listener.pin}
        try:
            _, offer = await hub.request(self.handle_id, watch)
        except janus.JanusError as exc:
            if relay is None or exc.code != janus.STREAMING_NO_SUCH_MOUNTPOINT:
                raise
            # A relay that was down (or added) when the stage was built: give it the stage now.
            await asyncio.to_thread(janus.relay_stage_ensure, space_id=self.space.pk, url=relay)
            _, offer = await hub.request(self.handle_id, watch)
        if relay is not None:
            await asyncio.to_thread(relays.listener_counted, url=relay, delta=1)
            self.counted_on = relay
        await self._send(
            {"type": "signal", "from": MEDIA_SERVER, "kind": "offer", "data": {"id": link_id, "sdp": offer}}
        )

    async def _answer(self, link_id: str, answer: dict | None) -> None:
        await self._send(
            {"type": "signal", "from": MEDIA_SERVER, "kind": "answer", "data": {"id": link_id, "sdp": answer}}
        )

    async def _refuse(self, link_id: str | None, message: str) -> None:
        await self._send(
            {"type": "signal", "from": MEDIA_SERVER, "kind": "ice", "data": {"id": link_id, "error": message}}
        )

    async def _uncount(self) -> None:
        relay, self.counted_on = self.counted_on, None
        if relay is not None:
            await asyncio.to_thread(relays.listener_counted, url=relay, delta=-1)

    async def _hangup(self) -> None:
        handle_id, shape, participant_id, hub = self.handle_id, self.shape, self.participant_id, self.hub
        self.handle_id = self.shape = self.link_id = self.participant_id = self.hub = None
        await self._uncount()
        if handle_id is None or hub is None:
            return
        if shape == "publish":
            # Take the token back too, so this browser can't rejoin on its own.
            try:
                await asyncio.to_thread(
                    janus.speaker_revoke,
                    space_id=self.space.pk,
                    user_id=self.user.pk,
                    participant_id=participant_id,
                )
            except janus.JanusError:
                pass  # the room may be gone already (the Space ended)
        await hub.detach(handle_id)

    async def close(self) -> None:
        self.closed = True
        async with self._lock:
            await self._hangup()
        for task in list(self._tasks):
            task.cancel()

    # --- from the room (events the consumer delivers) ------------------------------------

    def room_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "muted" and event.get("user_id") == self.user.pk:
            _spawn(self._tasks, self._apply_mute(bool(event.get("muted"))))
        elif kind == "role_changed" and event.get("participant", {}).get("user_id") == self.user.pk:
            if event["participant"].get("role") not in STAGE_ROLES and self.shape == "publish":
                _spawn(self._tasks, self._locked_hangup())
        elif (kind == "participant_left" and event.get("user_id") == self.user.pk) or kind == "space_ended":
            _spawn(self._tasks, self._locked_hangup())

    async def _locked_hangup(self) -> None:
        async with self._lock:
            await self._hangup()

    async def _apply_mute(self, muted: bool) -> None:
        if self.shape != "publish" or self.participant_id is None:
            return  # the next join reads the mute from the database
        call = janus.participant_mute if muted else janus.participant_unmute
        try:
            await asyncio.to_thread(call, space_id=self.space.pk, participant_id=self.participant_id)
        except janus.JanusError as exc:
            logger.warning(
                "could not %s user %s in Janus: %s", "mute" if muted else "unmute", self.user.pk, exc
            )

    # --- from Janus (the hub's poller) ---------------------------------------------------------

    def janus_event(self, event: dict[str, Any]) -> None:
        data = event.get("plugindata", {}).get("data", {})
        talking = data.get("audiobridge")
        if talking in ("talking", "stopped-talking") and data.get("id") == self.participant_id:
            _spawn(self._tasks, self._report_speaking(talking == "talking"))
        elif event.get("janus") in ("hangup", "detached") and self.link_id is not None:
            # Janus closed the PeerConnection (kicked, ICE gave up): the browser starts over.
            link_id = self.link_id
            _spawn(self._tasks, self._refuse(link_id, "The audio connection was closed. Reconnecting…"))

    def janus_lost(self) -> None:
        if self.link_id is not None:
            link_id = self.link_id
            self.handle_id = self.shape = self.link_id = self.participant_id = self.hub = None
            _spawn(self._tasks, self._uncount())
            # The page builds a new connection and watches again, on a relay that is up.
            _spawn(self._tasks, self._refuse(link_id, "The audio server restarted. Reconnecting…"))

    async def _report_speaking(self, on: bool) -> None:
        from . import services

        try:
            await database_sync_to_async(services.speaking_report)(space=self.space, by=self.user, on=on)
        except services.RoomError:
            pass  # demoted or muted in the meantime


async def _ensure_stage(call: Callable[..., Any], **kwargs: Any) -> Any:
    """Run a Janus stage call, building the stage first if Janus lost it (a restart, or a Space
    that went live while Janus was down)."""
    missing = (janus.AUDIOBRIDGE_NO_SUCH_ROOM, janus.STREAMING_NO_SUCH_MOUNTPOINT)
    try:
        result = await asyncio.to_thread(call, **kwargs)
        if result is False:  # stage_exists
            raise janus.JanusError("no stage", code=janus.AUDIOBRIDGE_NO_SUCH_ROOM)
        return result
    except janus.JanusError as exc:
        if exc.code not in missing:
            raise
    await asyncio.to_thread(janus.stage_create, space_id=kwargs["space_id"])
    return await asyncio.to_thread(call, **kwargs)
