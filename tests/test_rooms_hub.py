"""The Space hub's coalescing of captions, reactions and listeners' leaves (rooms/events.py): few
frames, newest text, nothing lost within the limits, and the room's own events never wait behind them."""

from __future__ import annotations

import asyncio
import json
import time

from rooms.events import SpaceHub
from rooms.protocol import CAPTIONS_INTERVAL, LISTENERS_LEFT_INTERVAL, REACTIONS_INTERVAL, REACTIONS_PER_FRAME


class Socket:
    def __init__(self) -> None:
        self.frames: list[tuple[float, dict]] = []
        self.closed: int | None = None

    async def hub_deliver(self, event, text) -> None:
        assert json.loads(text) == event
        self.frames.append((time.monotonic(), event))

    async def hub_close(self, code: int) -> None:
        self.closed = code

    def kinds(self) -> list[str]:
        return [event["type"] for _, event in self.frames]


def caption(user_id: int, utterance: int, text: str, *, final: bool = False) -> dict:
    return {
        "type": "caption",
        "user_id": user_id,
        "name": f"Speaker {user_id}",
        "text": text,
        "final": final,
        "utterance": utterance,
        "start": 1.0,
        "end": 2.0,
    }


def hub_with(*sockets: Socket) -> SpaceHub:
    hub = SpaceHub(1, on_empty=lambda _: None)
    hub.members.update(sockets)  # no channel layer needed to test delivery
    return hub


async def settle(seconds: float = 0.0) -> None:
    await asyncio.sleep(seconds)
    for _ in range(5):  # let flush tasks run
        await asyncio.sleep(0)


async def test_captions_go_out_together_at_most_once_per_interval_with_the_newest_text():
    a, b = Socket(), Socket()
    hub = hub_with(a, b)
    await hub.deliver(caption(7, 1, "good"))
    await settle()
    assert [e["lines"] for _, e in a.frames] == [[caption(7, 1, "good")]]  # the first goes at once
    words = ["good", "morning", "every", "one", "of", "you", "here"]
    for n in range(2, len(words) + 1):
        await hub.deliver(caption(7, 1, " ".join(words[:n])))
    await hub.deliver(caption(8, 1, "hello"))
    await hub.deliver(caption(7, 1, "good morning every one of you here", final=True))
    await hub.deliver(caption(7, 1, "good morning every one of you"))  # a late partial
    await settle()
    assert len(a.frames) == 1  # the rest waits for the interval
    await settle(CAPTIONS_INTERVAL + 0.1)
    assert a.kinds() == b.kinds() == ["captions", "captions"]
    (first_at, _), (second_at, second) = a.frames
    assert second_at - first_at >= CAPTIONS_INTERVAL * 0.9
    assert second["lines"] == [
        caption(7, 1, "good morning every one of you here", final=True),  # the final, not the late partial
        caption(8, 1, "hello"),
    ]
    await settle(CAPTIONS_INTERVAL + 0.1)
    assert len(a.frames) == 2  # nothing left, nothing sent


async def test_the_rooms_own_events_do_not_wait_for_captions():
    a = Socket()
    hub = hub_with(a)
    await hub.deliver(caption(7, 1, "one"))
    await settle()
    await hub.deliver(caption(7, 1, "one two"))
    muted = {"type": "muted", "v": 3, "user_id": 7, "muted": True, "by": 1}
    await hub.deliver(muted)
    assert a.kinds() == ["captions", "muted"]  # the mute went out while the caption waits
    await settle(CAPTIONS_INTERVAL + 0.1)
    assert a.kinds() == ["captions", "muted", "captions"]


async def test_the_last_words_go_out_before_the_space_ends():
    a = Socket()
    hub = hub_with(a)
    await hub.deliver(caption(7, 1, "thanks"))
    await settle()
    await hub.deliver(caption(7, 1, "thanks everyone", final=True))
    await hub.deliver({"type": "space_ended", "reason": "host"})
    assert a.kinds() == ["captions", "captions", "space_ended"]
    assert a.frames[1][1]["lines"] == [caption(7, 1, "thanks everyone", final=True)]
    assert a.closed is not None
    await settle(CAPTIONS_INTERVAL + 0.1)
    assert a.kinds() == ["captions", "captions", "space_ended"]


def reaction(user_id: int, emoji: str = "💯") -> dict:
    return {"type": "reaction", "user_id": user_id, "emoji": emoji}


async def test_reactions_go_out_together_at_most_once_per_interval_in_the_order_sent():
    a, b = Socket(), Socket()
    hub = hub_with(a, b)
    await hub.deliver(reaction(7, "❤️"))
    await settle()
    assert [e for _, e in a.frames] == [{"type": "reactions", "items": [{"user_id": 7, "emoji": "❤️"}]}]
    for user_id, emoji in [(8, "👋"), (7, "😂"), (9, "✊")]:
        await hub.deliver(reaction(user_id, emoji))
    muted = {"type": "muted", "v": 3, "user_id": 7, "muted": True, "by": 7}
    await hub.deliver(muted)
    await settle()
    assert a.kinds() == ["reactions", "muted"]  # the mute did not wait for the reactions
    await settle(REACTIONS_INTERVAL + 0.1)
    assert a.kinds() == b.kinds() == ["reactions", "muted", "reactions"]
    (first_at, _), _, (second_at, second) = a.frames
    assert second_at - first_at >= REACTIONS_INTERVAL * 0.9
    assert [(r["user_id"], r["emoji"]) for r in second["items"]] == [(8, "👋"), (7, "😂"), (9, "✊")]
    await settle(REACTIONS_INTERVAL + 0.1)
    assert len(a.frames) == 3  # nothing left, nothing sent


async def test_listeners_who_leave_go_out_together_at_most_once_per_interval():
    a, b = Socket(), Socket()
    hub = hub_with(a, b)
    await hub.deliver({"type": "listener_left", "user_id": 7})
    await settle()
    assert [e for _, e in a.frames] == [{"type": "listeners_left", "user_ids": [7]}]
    for user_id in (8, -3, 9, 8):  # -3: a guest's signal id; 8 twice is named once
        await hub.deliver({"type": "listener_left", "user_id": user_id})
    muted = {"type": "muted", "v": 3, "user_id": 1, "muted": True, "by": 1}
    await hub.deliver(muted)
    await settle()
    assert a.kinds() == ["listeners_left", "muted"]  # the stage did not wait for the audience
    await settle(LISTENERS_LEFT_INTERVAL + 0.1)
    assert a.kinds() == b.kinds() == ["listeners_left", "muted", "listeners_left"]
    (first_at, _), _, (second_at, second) = a.frames
    assert second_at - first_at >= LISTENERS_LEFT_INTERVAL * 0.9
    assert second["user_ids"] == [8, -3, 9]
    await settle(LISTENERS_LEFT_INTERVAL + 0.1)
    assert len(a.frames) == 3


async def test_a_listener_back_before_their_leave_went_out_is_not_named():
    a = Socket()
    hub = hub_with(a)
    await hub.deliver({"type": "listener_left", "user_id": 1})  # goes at once, opening the interval
    await settle()
    await hub.deliver({"type": "listener_left", "user_id": 7})
    await hub.deliver({"type": "listener_left", "user_id": 8})
    back = {"type": "participant_joined", "participant": {"user_id": 7, "role": "listener"}}
    await hub.deliver(back)
    await settle(LISTENERS_LEFT_INTERVAL + 0.1)
    assert [e for _, e in a.frames] == [
        {"type": "listeners_left", "user_ids": [1]},
        back,
        {"type": "listeners_left", "user_ids": [8]},
    ]


async def test_a_burst_of_reactions_is_cut_to_one_frames_worth():
    a = Socket()
    hub = hub_with(a)
    await hub.deliver(reaction(1))
    await settle()
    for user_id in range(2, REACTIONS_PER_FRAME + 30):
        await hub.deliver(reaction(user_id))
    await settle(REACTIONS_INTERVAL + 0.1)
    assert a.kinds() == ["reactions", "reactions"]
    items = a.frames[1][1]["items"]
    assert [r["user_id"] for r in items] == list(range(2, REACTIONS_PER_FRAME + 2))  # the first ones


class ClosedSocket(Socket):
    """A socket the server already closed whose disconnect hasn't run yet: sending raises."""

    async def hub_deliver(self, event, text) -> None:
        raise ConnectionError("Attempt to send on a closed protocol")


async def test_a_socket_closed_under_the_hub_does_not_cost_the_others_the_event():
    before, gone, after = Socket(), ClosedSocket(), Socket()
    hub = SpaceHub(1, on_empty=lambda _: None)
    for member in (before, gone, after):
        hub.members.add(member)
    await hub.deliver({"type": "muted", "v": 3, "user_id": 7, "muted": True, "by": 7})
    await hub.deliver({"type": "listener_count", "count": 12})
    await settle()
    assert before.kinds() == after.kinds() == ["muted", "listener_count"]


async def test_a_count_older_than_one_already_held_is_dropped():
    # Two writers' counts can reach the hub in the other order; the newer (higher seq) wins.
    listener = Socket()
    hub = SpaceHub(1, on_empty=lambda _: None)
    hub.members.add(listener)
    await hub.deliver({"type": "listener_count", "count": 1000, "guests": 0, "seq": 1001})
    await hub.deliver({"type": "listener_count", "count": 999, "guests": 0, "seq": 1000})
    await settle()
    assert [event["count"] for _, event in listener.frames] == [1000]


def shared_part(v: int) -> dict:
    """A shared snapshot part: the host (7) on stage, listeners 8 and 9 named."""
    person = {"username": "x", "name": "X", "avatar_url": "", "present": True}
    return {
        "v": v,
        "space": {"id": 1},
        "stage": [{**person, "user_id": 7, "role": "host", "muted": False}],
        "hands": [],
        "invited": [],
        "listeners": [{**person, "user_id": u, "role": "listener", "muted": True} for u in (8, 9)],
    }


async def test_the_shared_snapshot_is_kept_until_an_event_may_change_it():
    hub = SpaceHub(1, on_empty=lambda _: None)
    assert hub.shared_snapshot() == (None, 0)
    shared, generation = hub.shared_snapshot()
    hub.keep_shared_snapshot(shared_part(3), generation)
    assert hub.shared_snapshot()[0] == shared_part(3)
    await hub.deliver({"type": "listener_count", "count": 5, "guests": 0, "seq": 9})
    await hub.deliver(reaction(7))
    assert hub.shared_snapshot()[0] == shared_part(3)  # counts and reactions aren't in it
    await hub.deliver({"type": "hand_raised", "v": 4, "hand": {"user_id": 8}})
    assert hub.shared_snapshot()[0] is None


async def test_the_kept_shared_snapshot_follows_a_mute_and_a_leave_it_can_account_for():
    hub = SpaceHub(1, on_empty=lambda _: None)
    hub.keep_shared_snapshot(shared_part(3), hub.shared_snapshot()[1])
    # A listener it doesn't name leaves: nothing in it changes.
    await hub.deliver({"type": "listener_left", "user_id": 500})
    assert hub.shared_snapshot()[0] == shared_part(3)
    # The next version is the host's mute: one flag and the version change.
    await hub.deliver({"type": "muted", "v": 4, "user_id": 7, "muted": True, "by": 7})
    after = shared_part(4)
    after["stage"][0]["muted"] = True
    assert hub.shared_snapshot()[0] == after
    # A mute that skips a version (an event it never saw came between) drops it.
    await hub.deliver({"type": "muted", "v": 6, "user_id": 7, "muted": False, "by": 7})
    assert hub.shared_snapshot()[0] is None
    # So does the leave of a listener it names: the list would need the next one in line.
    hub.keep_shared_snapshot(shared_part(6), hub.shared_snapshot()[1])
    await hub.deliver({"type": "listener_left", "user_id": 8})
    assert hub.shared_snapshot()[0] is None


async def test_a_shared_snapshot_kept_before_an_update_is_not_changed_by_it():
    hub = SpaceHub(1, on_empty=lambda _: None)
    kept = shared_part(3)
    hub.keep_shared_snapshot(kept, hub.shared_snapshot()[1])
    await hub.deliver({"type": "muted", "v": 4, "user_id": 8, "muted": False, "by": 7})
    assert kept == shared_part(3)  # a snapshot may be being made from it in the database thread
    assert hub.shared_snapshot()[0]["listeners"][0]["muted"] is False


async def test_a_shared_snapshot_read_before_an_event_arrived_is_not_kept():
    hub = SpaceHub(1, on_empty=lambda _: None)
    _, generation = hub.shared_snapshot()
    # The read happens; meanwhile an event (maybe committed after the read) reaches the hub.
    await hub.deliver({"type": "hand_raised", "v": 5, "hand": {"user_id": 8}})
    hub.keep_shared_snapshot({"v": 4}, generation)
    assert hub.shared_snapshot()[0] is None
