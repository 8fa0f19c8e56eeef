"""What the Space websocket accepts (`/ws/spaces/<id>/`, docs/protocol.md).

The consumer is thin: it checks entry, sends the snapshot, validates each frame and calls one
service. It keeps nothing the database doesn't have, except which socket it is. Room-wide events
reach it through this process's ``SpaceHub`` (rooms/events.py); messages for this person alone
(signals, "close now") through the per-user group.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib import auth
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest

from accounts.ratelimit import FrameLimiter, RateLimited
from notifications.groups import user_group

from . import audio, protocol, rules, services
from .events import CLOSE_EVENT, PROCESS_ID, SpaceHub, encode_frame, hub_for, shared_names
from .guests import GUEST_COOKIE, guest_key_from_cookie, new_guest_key
from .models import GuestConnection, Participant, Space
from .presence import ensure_heartbeat
from .recordings import service as recording_service
from .selectors import space_snapshot, space_snapshot_shared

logger = logging.getLogger(__name__)


def _space(space_id: int) -> Space | None:
    return Space.objects.filter(pk=space_id).first()


def _snapshot(space: Space, viewer, hub: SpaceHub, me: Participant | None = None) -> dict:
    """A viewer's snapshot, in the database thread. Its shared part is the one `hub` keeps, looked
    up now (in a storm the socket waited seconds for this thread, and the part kept then is long
    gone), if it can stand for `viewer`; else it is read, and kept for the next arrivals. One kept
    before the viewer's own arrival reached this process would leave them out of their own
    listener list: their `participant_joined` is not sent to them (hub_deliver)."""
    shared, generation = hub.shared_snapshot()
    if shared is None or not _shared_names(shared, viewer):
        shared = space_snapshot_shared(space_id=space.pk)
        hub.keep_shared_snapshot(shared, generation)
    return space_snapshot(space=space, viewer=viewer, shared=shared, me=me)


def _shared_names(shared: dict, viewer) -> bool:
    """Whether a kept shared snapshot part can stand for `viewer`: it shows them (on stage or
    among the listeners it names), or it cannot (a guest, or a listener list already full, where
    newcomers are counted but not named)."""
    if not getattr(viewer, "is_authenticated", False):
        return True
    if len(shared["listeners"]) >= protocol.LISTENERS_SHOWN:
        return True
    return shared_names(shared, viewer.pk)


# Action type -> the service it calls. Each is called as fn(space=, by=, **fields).
SERVICES = {
    "hand_raise": services.hand_raise,
    "hand_lower": services.hand_lower,
    "speaker_accept": services.speaker_accept,
    "hand_dismiss": services.hand_dismiss,
    "speaker_invite": services.speaker_invite,
    "invite_accept": services.invite_accept,
    "invite_decline": services.invite_decline,
    "cohost_appoint": services.cohost_appoint,
    "cohost_remove": services.cohost_remove,
    "speaker_move_to_audience": services.speaker_move_to_audience,
    "speaker_step_down": services.speaker_step_down,
    "participant_remove": services.participant_remove,
    "mute_self": services.mute_self,
    "unmute_self": services.unmute_self,
    "mute_other": services.mute_other,
    "unmute_other": services.unmute_other,
    "reaction": services.reaction_send,
    "speaking": services.speaking_report,
    "captions_toggle": services.captions_toggle,
    "recording_toggle": recording_service.recording_toggle,
    "space_end": services.space_end,
    # WebRTC signalling (peer-to-peer audio): the relay rule lives in services.signal_send.
    "signal": services.signal_send,
}
GUEST_ONLY_LISTEN = (
    "You're listening without an account, so you can only listen. "
    "Sign up or sign in to raise your hand, react or report."
)
_TYPE_NAMES = {int: "a whole number", bool: "true or false", str: "a string", dict: "an object"}


class BadFrame(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_frame(text: str | None, data: bytes | None) -> tuple[str, dict[str, Any], str | None]:
    """Validate one client frame against rooms/protocol.py: (type, fields, ref) or BadFrame."""
    if text is None:
        raise BadFrame("bad_json", "Send JSON text frames, not binary ones.")
    if len(text) > protocol.MAX_SIGNAL_FRAME_BYTES:  # checked before parsing, and in characters
        raise BadFrame(
            "too_large",
            f"Frames are limited to {protocol.MAX_SIGNAL_FRAME_BYTES} bytes for signal and "
            f"{protocol.MAX_FRAME_BYTES} bytes for everything else; this one has {len(text)} characters.",
        )
    size = len(text.encode())
    try:
        message = json.loads(text)
    except ValueError:
        raise BadFrame("bad_json", "That frame isn't valid JSON.")
    except RecursionError:
        raise BadFrame("bad_json", "That frame is nested too deeply.")
    if not isinstance(message, dict):
        raise BadFrame("bad_json", "Each frame must be a JSON object with a type.")
    if not encodable(message):
        raise BadFrame(
            "bad_json",
            "That frame has text that isn't valid Unicode (a lone surrogate), or is nested too deeply.",
        )
    ref = message.get("ref")
    if ref is not None and (not isinstance(ref, str) or len(ref) > protocol.MAX_REF_CHARS):
        raise BadFrame("bad_field", f"ref must be a string of up to {protocol.MAX_REF_CHARS} characters.")
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in protocol.ACTION_FIELDS:
        raise BadFrame("unknown_type", f"Unknown message type {str(kind)[:40]!r}.")
    limit = protocol.MAX_SIGNAL_FRAME_BYTES if kind == "signal" else protocol.MAX_FRAME_BYTES
    if size > limit:
        raise BadFrame("too_large", f"{kind} frames are limited to {limit} bytes; this one has {size}.")
    fields: dict[str, Any] = {}
    for name, expected in protocol.ACTION_FIELDS[kind].items():
        value = message.get(name)
        ok = (type(value) is int) if expected is int else isinstance(value, expected)
        if not ok:
            raise BadFrame("bad_field", f"{kind} needs {name}: {_TYPE_NAMES[expected]}.")
        fields[name] = value
    return kind, fields, ref


def encodable(message: Any) -> bool:
    """JSON escapes can spell lone surrogates (\\ud800), which no UTF-8 frame can carry: such a
    frame can't be echoed, relayed or stored."""
    try:
        json.dumps(message, ensure_ascii=False).encode()
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


@dataclass
class Arrival:
    """What an arrival found and did (`SpaceConsumer._identify`, then `_join`): who this is, and
    either a refusal (close code, message) or the join made, with the snapshot read after it (none
    if the client left)."""

    user: Any
    space: Space | None = None
    refusal: tuple[int, str] | None = None
    guest: GuestConnection | None = None
    joined: bool = False
    snapshot: dict | None = None


class ClientGone(Exception):
    """The client left before this socket's join reached the database: it is not made."""


_running: set[asyncio.Task] = set()


def _keep(task: asyncio.Task) -> asyncio.Task:
    """Hold a strong reference to `task` until it is done (the loop keeps only weak ones), so
    work that must outlive a cancelled consumer is not collected half-way."""
    _running.add(task)
    task.add_done_callback(_running.discard)
    return task


class SpaceConsumer(AsyncWebsocketConsumer):
    user = None  # looked up once the socket is accepted
    space: Space | None = None
    hub: SpaceHub | None = None
    joined = False
    media = None  # rooms.audio: this socket's audio (Janus signalling, hang-ups)
    captions_shown = True  # the page hid captions (`captions_view`): no `captions` frames are sent
    ending_ref: str | None = None  # the ref of this socket's space_end, answered before the close
    guest: GuestConnection | None = None  # listening without an account (docs/protocol.md, "Guests")
    entry: asyncio.Task | None = None  # the join (participant_join or guest_join), once started
    release: asyncio.Task | None = None  # undoing what connect did (`_release`), once started
    client_gone = False  # the server told us the client left (read ahead of the handlers, `_pump`)
    grouped = False  # subscribed to this person's own group (user_group)

    async def __call__(self, scope, receive, send) -> None:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        pump = asyncio.ensure_future(self._pump(receive, inbox))
        try:
            await super().__call__(scope, inbox.get, send)
        finally:
            pump.cancel()
            # daphne cancels an instance still busy 10 s after its client left (say, a join
            # queued behind the database thread in a storm); `disconnect` then never runs, so
            # what connect did is undone here: no presence row or hub membership outlives it.
            await self._released()

    # What the client sends, and the handler for each.
    CLIENT_MESSAGES = {
        "websocket.connect": "websocket_connect",
        "websocket.receive": "websocket_receive",
        "websocket.disconnect": "websocket_disconnect",
    }

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = self.CLIENT_MESSAGES.get(message["type"])
        if handler is None:
            await super().dispatch(message)
            return
        # Skip Channels' hop to the one database thread (close_old_connections) before each of
        # the client's messages: every database call here goes through database_sync_to_async,
        # which closes stale connections itself, before and after. In a storm that hop queued each
        # new socket's handshake behind every join in progress (as rooms/captions/consumer.py
        # does for audio frames).
        await getattr(self, handler)(message)

    async def _pump(self, receive, inbox: asyncio.Queue) -> None:
        """Pass the server's messages on as they arrive. Channels hands a consumer its next message
        only after the last handler returns, so without this a client that left during `connect`
        (in a storm: while its lookups and join wait their turn in the database thread) would be
        joined, sent a snapshot and then left again, each a trip through that one thread."""
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    self.client_gone = True
                inbox.put_nowait(message)
                if self.client_gone:
                    return
        except Exception:
            logger.exception("reading a Space socket's messages failed; treating it as closed")
            self.client_gone = True
            inbox.put_nowait({"type": "websocket.disconnect", "code": 1011})

    async def _released(self) -> None:
        """Run `_release` once, to the end even if this instance is cancelled meanwhile."""
        if self.release is None:
            self.release = _keep(asyncio.ensure_future(self._release()))
        await asyncio.shield(self.release)

    def _identify(self) -> Arrival:
        """Who this is and which Space, read in the database thread: a refusal, or what `_join`
        needs. Nothing is written."""
        if self.client_gone:
            raise ClientGone
        request = HttpRequest()  # Django's own session-to-user lookup, as a view's request gets it
        request.session = self.scope["session"]
        user = auth.get_user(request)
        space = _space(self.space_id)
        if space is None:
            return Arrival(user, refusal=(protocol.CLOSE_NOT_FOUND, "There's no Space here. Check the link."))
        if space.state in (Space.State.ENDED, Space.State.CANCELLED):
            return Arrival(user, refusal=(protocol.CLOSE_ENDED, "This Space has ended."))
        return Arrival(user, space=space)

    async def _enter(self, arrival: Arrival) -> Arrival:
        """Run `_join` in the database thread; it finishes (and `_release` waits for it) even if
        this instance is cancelled while waiting."""
        join = database_sync_to_async(self._join)
        self.entry = _keep(asyncio.ensure_future(join(arrival)))
        return await asyncio.shield(self.entry)

    def _join(self, arrival: Arrival) -> Arrival:
        """The join (participant_join, or guest_join for someone without an account) and the
        snapshot read after it, in one trip through the database thread (in a storm each trip
        waits its turn behind every other socket's). If the client has left by the time the thread
        gets here, nothing is written and ClientGone is raised."""
        if self.client_gone:
            raise ClientGone
        user, space = arrival.user, arrival.space
        me = None
        try:
            if user.is_authenticated:
                me = services.participant_join(
                    space=space, user=user, channel_name=self.channel_name, process=PROCESS_ID
                )
            else:
                arrival.guest = self._guest_join(space)
        except (services.GuestLimit, RateLimited) as exc:
            arrival.refusal = (protocol.CLOSE_GUEST_LIMIT, exc.message)
        except services.SignInRequired as exc:
            arrival.refusal = (protocol.CLOSE_NOT_SIGNED_IN, exc.message)
        except services.RoomError as exc:
            arrival.refusal = (protocol.CLOSE_REFUSED, exc.message)
        if arrival.refusal is not None:
            return arrival
        arrival.joined = True
        if self.client_gone:
            return arrival  # left meanwhile: `_release` undoes the join; no snapshot for nobody
        arrival.snapshot = _snapshot(space, user, self.hub, me)
        return arrival

    def _guest_join(self, space: Space) -> GuestConnection:
        """Someone without an account: they may listen to a public live Space, within the per-address
        limits (services.guest_join), and do nothing else."""
        ip = (self.scope.get("client") or ["unknown"])[0] or "unknown"
        key = guest_key_from_cookie(self.scope.get("cookies", {}).get(GUEST_COOKIE)) or new_guest_key()
        return services.guest_join(
            space=space, guest_key=key, ip=ip, channel_name=self.channel_name, process=PROCESS_ID
        )

    async def connect(self) -> None:
        self.space_id = int(self.scope["url_route"]["kwargs"]["space_id"])
        self.ready = False
        self.backlog: list[tuple[dict, str]] = []
        self.finished = False
        self.limiter = FrameLimiter(rules.FRAME_LIMITS, rules.FRAME_BUCKETS)
        # Accept first, so a refusal reaches the page as words and a close code it can act on, and
        # look the person up after it (not in middleware before the handshake): in a join storm
        # the database thread's queue can outgrow daphne's handshake timeout (5 s), and a
        # handshake dropped for that is retried by the page, which only makes the queue longer.
        await self.accept()
        # Two trips through the database thread: who and where (`_identify`), then, once this
        # socket is subscribed, the join and its snapshot (`_join`).
        try:
            arrival = await database_sync_to_async(self._identify)()
        except ClientGone:
            return
        self.user = self.scope["user"] = arrival.user
        if arrival.refusal is not None:
            await self._refuse(*arrival.refusal)
            return
        if self.user.is_authenticated:
            # This person's own messages (a stage member's offer to a new speaker follows their
            # `participant_joined` at once) must find the socket subscribed when the join commits.
            await self.channel_layer.group_add(user_group(self.user.pk), self.channel_name)
            self.grouped = True
        # The Space's events too: nothing committed after the snapshot's reads is missed (events
        # meanwhile wait in the backlog).
        self.hub = hub_for(self.space_id)
        await self.hub.add(self)
        try:
            arrival = await self._enter(arrival)
        except ClientGone:
            return
        if arrival.refusal is not None:
            await self._refuse(*arrival.refusal)
            return
        self.space, self.guest, self.joined = arrival.space, arrival.guest, True
        self.media = audio.socket_audio(space=self.space, user=self.user, send=self._send, guest=self.guest)
        ensure_heartbeat()
        if arrival.snapshot is not None:
            await self._deliver_snapshot(arrival.snapshot)

    async def disconnect(self, code: int) -> None:
        await self._released()

    async def _release(self) -> None:
        self.finished = True
        if self.hub is not None:
            await self.hub.discard(self)
        if self.media is not None:
            await self.media.close()
        if self.grouped:
            await self.channel_layer.group_discard(user_group(self.user.pk), self.channel_name)
        if self.entry is None:
            return
        try:
            arrival = await self.entry  # a join still in the database thread finishes first
        except Exception:
            return  # the client had left, or it failed: nothing was written
        if not arrival.joined:
            return  # refused
        self.joined = False
        close = services.guest_close if arrival.guest is not None else services.connection_close
        await database_sync_to_async(close)(channel_name=self.channel_name)

    async def _refuse(self, code: int, message: str) -> None:
        if self.hub is not None:
            await self.hub.discard(self)
            self.hub = None
        await self._send({"type": "error", "code": "entry_refused", "message": message})
        await self._close(code, message)

    async def _close(self, code: int, reason: str = "") -> None:
        if self.finished:
            return
        if self.ending_ref is not None:
            # Our own space_end closes us (through the hub) before its service call returns here.
            ref, self.ending_ref = self.ending_ref, None
            await self._send({"type": "ok", "ref": ref})
        self.finished = True
        self.ready = False
        await self.close(code=code, reason=reason[:120] or None)

    async def _send(self, event: dict[str, Any]) -> None:
        await self.send(text_data=encode_frame(event))

    async def _send_snapshot(self) -> None:
        self.ready = False
        # The part every viewer shares comes from this process's hub when it has it, so a storm
        # of arrivals reads it about once; each socket still gets it after subscribing.
        if self.client_gone:
            return
        snapshot = await database_sync_to_async(_snapshot)(self.space, self.user, self.hub)
        await self._deliver_snapshot(snapshot)

    async def _deliver_snapshot(self, snapshot: dict) -> None:
        """Send `snapshot`, then what the hub held back while it was read (each event once: those
        it already includes are not sent again)."""
        if self.finished:
            return
        await self._send(snapshot)
        backlog, self.backlog = self.backlog, []
        for event, text in backlog:
            if self._not_for_page(event):
                continue
            if self.media is not None:
                self.media.room_event(event)
            if event.get("v", snapshot["v"] + 1) > snapshot["v"]:  # else already in the snapshot
                await self.send(text_data=text)
        self.ready = True

    def _not_for_page(self, event: dict[str, Any]) -> bool:
        if event["type"] == "participant_joined" and event["participant"]["user_id"] == self.user.pk:
            return True  # our own arrival (another tab of ours already counts us)
        return event["type"] == "captions" and not self.captions_shown

    # --- from this process's hub (every event of the Space) ---------------------------------

    async def hub_deliver(self, event: dict[str, Any], text: str) -> None:
        if self.finished:
            return
        if not self.ready:
            # Held, media hook included: the audio may answer with frames of its own, and
            # nothing may reach the page before its snapshot. (Until the arrival's trip through
            # the database returns, we don't even know who this socket is.)
            self.backlog.append((event, text))
            return
        if self._not_for_page(event):
            return
        if self.media is not None:
            self.media.room_event(event)
        await self.base_send({"type": "websocket.send", "text": text})  # the hot path: no wrappers

    async def hub_close(self, code: int) -> None:
        await self._close(code)

    # --- from the per-user group (this person only) -----------------------------------------

    async def user_event(self, message: dict[str, Any]) -> None:
        space_id = message.get("space_id")
        if space_id is not None and space_id != self.space_id:
            return
        event = message["event"]
        if event["type"] == CLOSE_EVENT:
            text = event.get("message") or "You were removed from this Space."
            await self._send({"type": "error", "code": "entry_refused", "message": text})
            await self._close(event["code"], text)
            return
        if self.ready:
            await self._send(event)

    async def notification_new(self, message: dict[str, Any]) -> None:
        """The bell's message to the same person (notifications.groups): not for a Space page."""

    # --- from the browser --------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.finished or not self.joined:
            return
        ref = None
        try:
            self.limiter.check("any")
            kind, fields, ref = parse_frame(text_data, bytes_data)
            self.limiter.check(kind)
            if kind == "signal":
                self.limiter.check("signal_to", scope=str(fields["to"]))
            await self._act(kind, fields, ref)
        except BadFrame as exc:
            await self._error(exc.code, exc.message, ref)
        except RateLimited as exc:
            await self._error("rate_limited", exc.message, ref)
        except services.RoomError as exc:
            await self._error(exc.code, exc.message, ref)
        except ValidationError as exc:
            await self._error("bad_field", " ".join(exc.messages), ref)
        except PermissionDenied as exc:
            await self._error("forbidden", str(exc) or "You can't do that here.", ref)
        except Exception:
            logger.exception("websocket action failed in Space %s", self.space_id)
            await self._error(
                "server_error", "Something went wrong on our side; nothing changed. Try again.", ref
            )

    async def _error(self, code: str, message: str, ref: str | None) -> None:
        event = {"type": "error", "code": code, "message": message}
        if ref is not None:
            event["ref"] = ref
        await self._send(event)

    async def _act(self, kind: str, fields: dict[str, Any], ref: str | None) -> None:
        if self.guest is not None and kind not in protocol.GUEST_ACTIONS:
            raise services.RoomForbidden(GUEST_ONLY_LISTEN)
        if kind == "ping":
            await self._send({"type": "pong", **({"ref": ref} if ref else {})})
            return
        if kind == "resync":
            await self._send_snapshot()
            return
        if kind == "captions_view":  # this socket only; nothing in the room changes
            self.captions_shown = fields["on"]
            await self._ok(ref)
            return
        if kind == "leave" and self.guest is not None:
            await self._ok(ref)
            await self._close(1000)
            return
        if kind == "signal" and self.guest is not None and fields["to"] != audio.MEDIA_SERVER:
            await database_sync_to_async(services.guest_signal_send)(
                space=self.space, guest=self.guest, **fields
            )
            await self._ok(ref)
            return
        if kind == "leave":
            await database_sync_to_async(services.participant_leave)(space=self.space, by=self.user)
            await self._ok(ref)
            await self._close(1000)
            return
        if kind == "signal" and fields["to"] == audio.MEDIA_SERVER:
            await self.media.signal(kind=fields["kind"], data=fields["data"])
            await self._ok(ref)
            return
        if kind == "space_end":
            self.ending_ref = ref
        try:
            await database_sync_to_async(SERVICES[kind])(space=self.space, by=self.user, **fields)
        finally:
            unanswered, self.ending_ref = self.ending_ref, None
        if kind == "space_end" and unanswered is None:
            return  # answered by _close already
        await self._ok(ref)

    async def _ok(self, ref: str | None) -> None:
        if ref is not None and not self.finished:
            await self._send({"type": "ok", "ref": ref})
