"""How a Space's events travel from a committed write to every open socket.

Write side: ``publish_on_commit`` is the only way an event reaches the channel layer. It waits
for the transaction to commit (STYLE.md §3), so nobody hears about a change that was rolled back.

Read side: each process holds one ``SpaceHub`` per Space that has local sockets. The hub is a
single channel-layer subscription to the Space's group; it encodes each event to JSON once and
writes it to every local socket of that Space. Channels' usual pattern — every consumer in the
group, each with its own channel — costs per listener: a ``deepcopy`` and an ``asyncio`` task per
recipient in ``InMemoryChannelLayer.group_send``, an O(all channels) ``_clean_expired`` sweep in
every ``receive`` (O(N²) per broadcast), a thread hop to ``close_old_connections`` in every
``dispatch``, and a JSON encode per socket. See docs/benchmarks.md for the figures.

Messages to one person (WebRTC signals, "your socket must close") go to the per-user group
``user-<id>`` that every consumer of that user joins; ``space_id`` says which Space's sockets they
are for (``None``: all of them — suspension uses that).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from notifications.groups import user_group

from .protocol import (
    CAPTIONS_INTERVAL,
    LISTENER_COUNT_INTERVAL,
    LISTENERS_LEFT_INTERVAL,
    REACTIONS_INTERVAL,
    REACTIONS_PER_FRAME,
)

logger = logging.getLogger(__name__)

# Names this process in Connection rows so its heartbeat refreshes only its own sockets.
PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

# Sockets written between two yields to the event loop during one event's fan-out.
WRITE_BATCH = 250

# A hub keeps the part of a snapshot every viewer shares at most this long (besides dropping it at
# the next event that may change it): bounds how stale what no event announces (a renamed
# speaker, an edited title) can be in a new arrival's snapshot.
SHARED_SNAPSHOT_SECONDS = 5.0

# Events that change nothing in a snapshot: they leave the kept shared part as it is.
SNAPSHOT_NEUTRAL = frozenset({"listener_count", "caption", "reaction", "speaking"})

# Internal (never sent to a browser as is): close the receiving sockets with this code.
CLOSE_EVENT = "_close"


def shared_names(shared: dict[str, Any], user_id: Any) -> bool:
    """Whether a shared snapshot part shows this person, on stage or among the listeners it names."""
    return any(p["user_id"] == user_id for p in (*shared["stage"], *shared["listeners"]))


def shared_after(shared: dict[str, Any], event: dict[str, Any]) -> dict[str, Any] | None:
    """A kept shared snapshot part as it is after `event`, where that is certain without reading
    the database (None where it is not). The two commonest events in a busy Space: a listener
    not named in it leaving changes nothing in it; a mute that directly follows it (by version)
    changes one flag. Anything else drops it. A new dict: a snapshot may be being made from the old
    one in the database thread."""
    kind = event.get("type")
    if kind == "listener_left":
        return None if shared_names(shared, event["user_id"]) else shared
    if kind == "muted" and event.get("v") == shared["v"] + 1:

        def flagged(people: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{**p, "muted": event["muted"]} if p["user_id"] == event["user_id"] else p for p in people]

        return {
            **shared,
            "v": event["v"],
            "stage": flagged(shared["stage"]),
            "listeners": flagged(shared["listeners"]),
        }
    return None


def space_group(space_id: int) -> str:
    return f"space-{space_id}"


def publish_on_commit(space_id: int | None, event: dict[str, Any], *, to_user: int | None = None) -> None:
    """Send `event` to everyone in the Space — or, with `to_user`, to that person's sockets in it
    (all their sockets when `space_id` is None) — once the current transaction commits."""
    if to_user is None:
        assert space_id is not None, "an event for a whole Space needs its id"
        group, message = space_group(space_id), {"type": "space.event", "event": event}
    else:
        group, message = user_group(to_user), {"type": "user.event", "space_id": space_id, "event": event}
    transaction.on_commit(lambda: _send(group, message))


# Open home pages (spaces_project.consumers.HomeConsumer) listen here for "what home shows changed".
HOME_GROUP = "home"


def home_publish(*, counts_only: bool = False) -> None:
    """Tell open home pages that a Space started or ended, a stage or a listener count changed.
    Call it after commit (services do, through `home_changed` and `home_counts_changed`); each page
    re-reads at most once a second, and for listener counts alone at most once per
    SPACES_HOME_COUNT_SECONDS."""
    _send(HOME_GROUP, {"type": "home.counts" if counts_only else "home.changed"})


def publish_to_socket_on_commit(channel_name: str, space_id: int, event: dict[str, Any]) -> None:
    """Send `event` to one socket (a guest's: guests have no per-user group) after commit."""
    message = {"type": "user.event", "space_id": space_id, "event": event}
    transaction.on_commit(lambda: _send(channel_name, message, single=True))


def _send(group: str, message: dict, *, single: bool = False) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    send = layer.send if single else layer.group_send
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(send)(group, message)
        return
    # Called from inside an event loop (an async test committing in the loop's thread): the
    # send must not block the loop it needs, so it is scheduled on it (and kept until done).
    task = loop.create_task(send(group, message))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


_pending: set[asyncio.Task] = set()


# --- the read side: one hub per process per Space ------------------------------------


class LocalSocket(Protocol):
    """What the hub needs from a consumer."""

    channel_name: str

    async def hub_deliver(self, event: dict[str, Any], text: str) -> None: ...

    async def hub_close(self, code: int) -> None: ...


class _Throttle:
    """Calls `flush` at most once per `interval` seconds: on the loop's next turn when the last
    call was long enough ago, else when the interval is up. Its owner decides what is sent."""

    def __init__(self, interval: float, flush: Callable[[], Any]) -> None:
        self.interval = interval
        self._flush = flush
        self._last = 0.0
        self._timer: asyncio.Handle | None = None
        self._task: asyncio.Task | None = None

    def poke(self) -> None:
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._last + self.interval - time.monotonic()
        self._timer = loop.call_soon(self._fire) if wait <= 0 else loop.call_later(wait, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._last = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._flush())

    async def now(self) -> None:
        """Flush what is waiting before something that must come after it."""
        self.cancel()
        self._last = time.monotonic()
        await self._flush()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def encode_frame(event: dict[str, Any]) -> str:
    """An event as the text of a websocket frame (compact, UTF-8 as is)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


class SpaceHub:
    """This process's subscription to one Space's events, written to its local sockets."""

    def __init__(self, space_id: int, on_empty: Callable[[int], None]) -> None:
        self.space_id = space_id
        self.members: set[LocalSocket] = set()
        self._on_empty = on_empty
        self._lock = asyncio.Lock()
        self._channel: str | None = None
        self._task: asyncio.Task | None = None
        self._count: dict[str, Any] | None = None
        self._count_seq = -1  # of the newest count written or waiting
        self._count_throttle = _Throttle(LISTENER_COUNT_INTERVAL, self._flush_count)
        self._captions: dict[tuple[int, int], dict[str, Any]] = {}
        self._captions_throttle = _Throttle(CAPTIONS_INTERVAL, self._flush_captions)
        self._reactions: list[dict[str, Any]] = []
        self._reactions_throttle = _Throttle(REACTIONS_INTERVAL, self._flush_reactions)
        self._left: dict[int, None] = {}  # listeners gone, in order, not yet written
        self._left_throttle = _Throttle(LISTENERS_LEFT_INTERVAL, self._flush_left)
        # The kept shared part of a snapshot. Snapshots are made in the database thread (so the
        # kept part is looked up just before the read, not when the socket queued for the thread,
        # which in a storm is seconds earlier) and events arrive on the event loop: hence a lock.
        self._shared_lock = threading.Lock()
        self._shared: dict[str, Any] | None = None
        self._shared_at = 0.0
        self._generation = 0  # bumped by every event that may change a snapshot

    def shared_snapshot(self) -> tuple[dict[str, Any] | None, int]:
        """The kept part of a snapshot every viewer shares (None when there is none, or it may be
        out of date), and the generation to pass back to ``keep_shared_snapshot``. Safe to call
        from the database thread."""
        with self._shared_lock:
            fresh = self._shared is not None and time.monotonic() - self._shared_at < SHARED_SNAPSHOT_SECONDS
            return (self._shared if fresh else None), self._generation

    def keep_shared_snapshot(self, shared: dict[str, Any], generation: int) -> None:
        """Keep `shared`, read from the database after ``shared_snapshot`` returned `generation`,
        unless an event arrived meanwhile: it may have been committed after the read. (One that
        arrives later updates or drops it; a socket whose snapshot used it hears that event after
        it.) Safe to call from the database thread."""
        with self._shared_lock:
            if generation == self._generation:
                self._shared, self._shared_at = shared, time.monotonic()

    def _event_arrived(self, event: dict[str, Any]) -> None:
        with self._shared_lock:
            self._generation += 1
            if self._shared is not None:
                self._shared = shared_after(self._shared, event)

    async def add(self, member: LocalSocket) -> None:
        async with self._lock:
            self.members.add(member)
            if self._task is None:
                layer = get_channel_layer()
                self._channel = await layer.new_channel("hub.")
                await layer.group_add(space_group(self.space_id), self._channel)
                self._task = asyncio.get_running_loop().create_task(self._run(layer, self._channel))

    async def discard(self, member: LocalSocket) -> None:
        async with self._lock:
            self.members.discard(member)
            if self.members or self._task is None:
                return
            self._task.cancel()
            layer = get_channel_layer()
            await layer.group_discard(space_group(self.space_id), self._channel)
            if hasattr(layer, "flush_channel"):  # some layers can forget a channel outright
                await layer.flush_channel(self._channel)
            self._task = self._channel = None
            self._count_throttle.cancel()
            self._captions_throttle.cancel()
            self._reactions_throttle.cancel()
            self._left_throttle.cancel()
            self._on_empty(self.space_id)

    async def _run(self, layer, channel: str) -> None:
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # e.g. Redis restarting: keep listening rather than go deaf
                logger.exception("channel layer receive failed in Space %s; retrying", self.space_id)
                await asyncio.sleep(1)
                continue
            try:
                await self.deliver(message["event"])
            except Exception:  # one bad event must not silence the Space
                logger.exception("could not deliver an event in Space %s", self.space_id)

    async def deliver(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind not in SNAPSHOT_NEUTRAL:
            self._event_arrived(event)
        if kind == "listener_count":
            # Counts change with every join; the newest, at most once per interval. Counts from
            # different writers can arrive out of order: one older than what we have is dropped.
            seq = event.get("seq", 0)
            if seq < self._count_seq:
                return
            self._count_seq = seq
            self._count = event
            self._count_throttle.poke()
            return
        if kind == "caption":
            self._hold_caption(event)
            return
        if kind == "reaction":
            self._hold_reaction(event)
            return
        if kind == "listener_left":
            self._left[event["user_id"]] = None
            self._left_throttle.poke()
            return
        if kind == "participant_joined":
            self._left.pop(event["participant"]["user_id"], None)  # back before their leave went out
        if kind == "space_ended":
            await self._captions_throttle.now()  # the last words go out before the room closes
        await self._write_all(event, encode_frame(event))
        if kind == "space_ended":
            from .protocol import CLOSE_ENDED

            for member in list(self.members):
                await member.hub_close(CLOSE_ENDED)

    def _hold_caption(self, event: dict[str, Any]) -> None:
        """Captions go out together, at most once per CAPTIONS_INTERVAL, as one `captions` frame:
        with three speakers talking that is a few frames a second per listener instead of one
        per partial, so the room's own events never queue behind a stream of captions. Of one
        utterance only the newest text is kept (a partial replaces the one before; a final
        settles it and is never replaced by a late partial)."""
        key = (event["user_id"], event["utterance"])
        held = self._captions.get(key)
        if held is None or not held["final"]:
            self._captions[key] = event
        self._captions_throttle.poke()

    async def _flush_captions(self) -> None:
        if not self._captions:
            return
        lines, self._captions = list(self._captions.values()), {}
        event = {"type": "captions", "lines": lines}
        await self._write_all(event, encode_frame(event))

    def _hold_reaction(self, event: dict[str, Any]) -> None:
        """Reactions go out together, at most once per REACTIONS_INTERVAL, as one `reactions`
        frame: twenty a second in a Space of thousands was twenty frames a second per listener,
        all written by the one event loop that also accepts new sockets. Past REACTIONS_PER_FRAME
        in one interval the rest are not shown (the Space's total still counts them)."""
        if len(self._reactions) < REACTIONS_PER_FRAME:
            self._reactions.append({"user_id": event["user_id"], "emoji": event["emoji"]})
        self._reactions_throttle.poke()

    async def _flush_reactions(self) -> None:
        if not self._reactions:
            return
        items, self._reactions = self._reactions, []
        event = {"type": "reactions", "items": items}
        await self._write_all(event, encode_frame(event))

    async def _flush_left(self) -> None:
        """Listeners who left go out together, at most once per LISTENERS_LEFT_INTERVAL, as one
        `listeners_left` frame: with an audience of thousands coming and going, one frame (and
        one audio hang-up each) per leave per listener was most of what the event loop wrote."""
        if not self._left:
            return
        user_ids, self._left = list(self._left), {}
        event = {"type": "listeners_left", "user_ids": user_ids}
        await self._write_all(event, encode_frame(event))

    async def _flush_count(self) -> None:
        event, self._count = self._count, None
        if event is None:
            return
        await self._write_all(event, encode_frame(event))

    async def _write_all(self, event: dict[str, Any], text: str) -> None:
        """One pass over the local sockets, no task per recipient. Each send only queues the frame
        in the server's write buffer (daphne/Twisted write when the loop next polls), so the loop
        yields every WRITE_BATCH sockets: the first listeners' frames leave while the rest are
        still being queued, instead of all of them after the whole pass."""
        for i, member in enumerate(list(self.members), start=1):
            try:
                await member.hub_deliver(event, text)
            except Exception:
                # A socket that closed under us (its disconnect not yet run) must not cost the
                # members after it this event.
                logger.debug("a hub member could not take an event", exc_info=True)
            if i % WRITE_BATCH == 0:
                await asyncio.sleep(0)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, SpaceHub]] = weakref.WeakKeyDictionary()


def _loop_hubs() -> dict[int, SpaceHub]:
    # Keyed by event loop: production has one loop per process; tests make one per test.
    loop = asyncio.get_running_loop()
    hubs = _hubs.get(loop)
    if hubs is None:
        hubs = _hubs[loop] = {}
    return hubs


def hub_for(space_id: int) -> SpaceHub:
    hubs = _loop_hubs()
    hub = hubs.get(space_id)
    if hub is None:
        hub = hubs[space_id] = SpaceHub(space_id, on_empty=lambda sid: hubs.pop(sid, None))
    return hub


def local_space_ids() -> list[int]:
    """Spaces with sockets open in this process (this event loop)."""
    return list(_loop_hubs())


def local_channel_names() -> list[str]:
    """The channel names of the sockets open in this process (this event loop), in any Space."""
    return [member.channel_name for hub in _loop_hubs().values() for member in hub.members]
