"""The websocket protocol of a Space (`/ws/spaces/<id>/`), written down once.

Every frame is one JSON object with a ``type``. The browser (static/js) and the
server (rooms/consumers.py) both follow this module; docs/protocol.md is the
same thing as a table for people.

Client → server: an *action*. Each may carry ``ref`` (a short string the client
chooses); the answer to it — ``ok`` or ``error`` — echoes that ``ref``.

Server → client: first a ``snapshot`` (the whole state), then *events*. Events
that change stage state carry ``v``, the Space's state version after the
change: the snapshot carries ``v`` too, so a client drops events with
``v <= snapshot.v`` (already included) and asks for a fresh snapshot (``resync``)
when it sees a gap (``v > last_v + 1``). Presence and ephemeral events
(``participant_joined``/``left``, ``listener_count``, ``reaction``, ``speaking``,
``signal``) carry no ``v`` and are idempotent.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

# --- limits ------------------------------------------------------------------

MAX_FRAME_BYTES = 4 * 1024
"""Largest JSON frame accepted for any action except ``signal``."""
MAX_SIGNAL_FRAME_BYTES = 16 * 1024
"""Largest ``signal`` frame (an SDP offer with many codecs is a few KB)."""
MAX_REF_CHARS = 64
LISTENERS_SHOWN = 50
"""How many listeners the snapshot names; past this, only ``listener_count`` changes are sent."""
LISTENER_COUNT_INTERVAL = 1.0
"""``listener_count`` events are coalesced to at most one per this many seconds per Space."""
CAPTIONS_INTERVAL = 0.5
"""``caption`` events reach sockets together, as one ``captions`` frame at most this often."""
REACTIONS_INTERVAL = 0.5
"""``reaction`` events reach sockets together, as one ``reactions`` frame at most this often (the
page pops a frame's reactions one after another across this interval: REACTIONS_SPREAD_MS)."""
REACTIONS_PER_FRAME = 50
"""Most reactions one ``reactions`` frame carries; more in one interval are not shown (still counted)."""
LISTENERS_LEFT_INTERVAL = 1.0
"""Listeners who left reach sockets together, as one ``listeners_left`` frame at most this often."""

REACTIONS = ("😂", "💯", "✋", "✊", "✌️", "👋", "❤️")

# --- vocabulary ----------------------------------------------------------------

Role = Literal["host", "cohost", "speaker", "listener"]
State = Literal["scheduled", "live", "ended", "cancelled"]
SignalKind = Literal["offer", "answer", "ice"]

ROLES: tuple[str, ...] = ("host", "cohost", "speaker", "listener")
STAGE_ROLES: tuple[str, ...] = ("host", "cohost", "speaker")
SIGNAL_KINDS: tuple[str, ...] = ("offer", "answer", "ice")

# --- close codes (the websocket close frame; ``reason`` is a short human text) ---

CLOSE_NOT_SIGNED_IN = 4401
CLOSE_REFUSED = 4403  # entry_refusal() said no: removed, suspended, blocked, no ticket…
CLOSE_NOT_FOUND = 4404
CLOSE_ENDED = 4410  # the Space ended (by the host, a moderator or because the host was gone)
CLOSE_REMOVED = 4411  # removed from the Space while in it
CLOSE_FORCED = 4412  # closed by moderation (e.g. the account was suspended)
CLOSE_GUEST_LIMIT = 4429  # too many guest sockets from one IP address (SPACES_GUEST_SOCKETS_PER_IP…)

GUEST_ACTIONS: tuple[str, ...] = ("resync", "ping", "leave", "captions_view", "signal")
"""The only actions a guest (no account) may send; every other one is answered ``forbidden``."""

# --- error codes (``error.code``) -----------------------------------------------

ERROR_CODES: dict[str, str] = {
    "bad_json": "The frame is not a JSON object.",
    "too_large": "The frame is larger than the limit for its type.",
    "unknown_type": "The ``type`` is not one this server understands.",
    "bad_field": "A field is missing or has the wrong type or value.",
    "forbidden": "Your role doesn't allow this action (e.g. a listener unmuting someone).",
    "not_found": "The person the action names is not in this Space.",
    "conflict": "The action doesn't apply now (e.g. accepting a hand that is no longer raised).",
    "stage_full": "The stage already has 13 people (1 host, 2 co-hosts, 10 speakers).",
    "not_allowed_to_speak": "The Space's speak policy doesn't let this person speak.",
    "rate_limited": "Too many frames of this kind (docs/protocol.md, rate limits); only the sender is told.",
    "not_live": "The Space is not live (scheduled, ended or cancelled).",
    "server_error": "Something broke on our side; nothing changed. Try again.",
    "entry_refused": "Sent just before the server closes with a 44xx code; the message says why.",
}

# --- shared shapes -----------------------------------------------------------


class ParticipantView(TypedDict):
    user_id: int
    username: str
    name: str
    avatar_url: str  # "" when the person has no avatar: show initials
    role: Role
    muted: bool
    present: bool  # has a live connection now (stage members stay on stage briefly after a drop)


class HandView(TypedDict):
    user_id: int
    username: str
    name: str
    avatar_url: str
    raised_at: str  # ISO 8601


class SpaceView(TypedDict):
    id: int
    title: str
    topics: list[str]
    state: State
    speak_policy: Literal["everyone", "followed", "invited"]
    captions: bool
    recording: bool  # everyone shows REC while true
    host_id: int
    started_at: str | None
    ended_at: str | None


class MeView(TypedDict):
    user_id: int | None  # None for a guest (listening without an account)
    guest: bool  # listening without an account: can only listen
    role: Role
    muted: bool
    hand_raised: bool
    invited: bool  # a pending speaker invite: show accept / decline
    can_raise_hand: bool  # the speak policy lets this listener ask to speak
    removed: bool


# --- client → server ----------------------------------------------------------


class _Action(TypedDict):
    ref: NotRequired[str]


class Resync(_Action):  # ask for a fresh snapshot
    type: Literal["resync"]


class Ping(_Action):  # answered with pong
    type: Literal["ping"]


class Leave(_Action):  # a goodbye: leaves the stage (if on it) and the Space; the server closes
    type: Literal["leave"]


class HandRaise(_Action):  # listener
    type: Literal["hand_raise"]


class HandLower(_Action):  # listener, own hand
    type: Literal["hand_lower"]


class SpeakerAccept(_Action):  # host / co-host: a raised hand becomes a speaker
    type: Literal["speaker_accept"]
    user_id: int


class HandDismiss(_Action):  # host / co-host: lower someone's hand without accepting
    type: Literal["hand_dismiss"]
    user_id: int


class SpeakerInvite(_Action):  # host / co-host: invite a listener to speak
    type: Literal["speaker_invite"]
    user_id: int


class InviteAccept(_Action):  # the invited listener
    type: Literal["invite_accept"]


class InviteDecline(_Action):
    type: Literal["invite_decline"]


class CohostAppoint(_Action):  # host only
    type: Literal["cohost_appoint"]
    user_id: int


class CohostRemove(_Action):  # host only: the co-host becomes a speaker
    type: Literal["cohost_remove"]
    user_id: int


class SpeakerMoveToAudience(_Action):  # host / co-host, for speakers (host also for co-hosts)
    type: Literal["speaker_move_to_audience"]
    user_id: int


class SpeakerStepDown(_Action):  # a speaker or co-host becomes a listener
    type: Literal["speaker_step_down"]


class ParticipantRemove(_Action):  # host / co-host; removed people cannot rejoin
    type: Literal["participant_remove"]
    user_id: int


class MuteSelf(_Action):
    type: Literal["mute_self"]


class UnmuteSelf(_Action):
    type: Literal["unmute_self"]


class MuteOther(_Action):  # host / co-host, a speaker; nobody can unmute anyone else
    type: Literal["mute_other"]
    user_id: int


class UnmuteOther(_Action):  # always refused with ``forbidden``: people unmute themselves
    type: Literal["unmute_other"]
    user_id: int


class ReactionSend(_Action):
    type: Literal["reaction"]
    emoji: str  # one of REACTIONS


class Speaking(_Action):  # voice activity from a stage member's browser (throttled server-side)
    type: Literal["speaking"]
    on: bool


class CaptionsToggle(_Action):  # host only
    type: Literal["captions_toggle"]
    on: bool


class RecordingToggle(_Action):  # host or co-host; before going live (the page's form) or while live
    type: Literal["recording_toggle"]
    on: bool


class CaptionsView(_Action):  # anyone: whether this socket wants `captions` frames (hidden on the page)
    type: Literal["captions_view"]
    on: bool


class SpaceEnd(_Action):  # host only (moderators end Spaces from the admin)
    type: Literal["space_end"]


class Signal(_Action):
    """WebRTC signalling, relayed only between people allowed to exchange audio:
    both in this live Space, not removed, and at least one of them on stage."""

    type: Literal["signal"]
    to: int  # user id
    kind: SignalKind
    data: dict  # SDP ({"type","sdp"}) or an ICE candidate, passed through untouched


# Fields each action needs beyond ``type`` and ``ref``: name -> Python type.
ACTION_FIELDS: dict[str, dict[str, type]] = {
    "resync": {},
    "ping": {},
    "leave": {},
    "hand_raise": {},
    "hand_lower": {},
    "speaker_accept": {"user_id": int},
    "hand_dismiss": {"user_id": int},
    "speaker_invite": {"user_id": int},
    "invite_accept": {},
    "invite_decline": {},
    "cohost_appoint": {"user_id": int},
    "cohost_remove": {"user_id": int},
    "speaker_move_to_audience": {"user_id": int},
    "speaker_step_down": {},
    "participant_remove": {"user_id": int},
    "mute_self": {},
    "unmute_self": {},
    "mute_other": {"user_id": int},
    "unmute_other": {"user_id": int},
    "reaction": {"emoji": str},
    "speaking": {"on": bool},
    "captions_toggle": {"on": bool},
    "captions_view": {"on": bool},
    "recording_toggle": {"on": bool},
    "space_end": {},
    "signal": {"to": int, "kind": str, "data": dict},
}

# --- server → client ----------------------------------------------------------


class Snapshot(TypedDict):
    type: Literal["snapshot"]
    v: int
    space: SpaceView
    me: MeView
    stage: list[ParticipantView]  # host, then co-hosts, then speakers, in the order they came up
    hands: list[HandView]  # raised hands, oldest first
    invited: list[int]  # user ids with a pending speaker invite
    listener_count: int  # everyone listening, guests included
    guest_count: int  # of whom this many without an account ("+ 12 guests")
    listeners: list[ParticipantView]  # the first LISTENERS_SHOWN present listeners
    reactions: list  # always empty: reactions are momentary and never replayed


class Ok(TypedDict):  # the action with this ref was applied
    type: Literal["ok"]
    ref: str


class Pong(TypedDict):
    type: Literal["pong"]
    ref: NotRequired[str]


class Error(TypedDict):
    type: Literal["error"]
    code: str  # a key of ERROR_CODES; "entry_refused" comes just before any 44xx close
    message: str  # for people: what went wrong and what to do now
    ref: NotRequired[str]


class ParticipantJoined(TypedDict):  # someone's first connection opened (listeners: only while few)
    type: Literal["participant_joined"]
    participant: ParticipantView


class ParticipantLeft(TypedDict):  # a stage member's last connection closed, or someone was removed
    type: Literal["participant_left"]
    user_id: int
    reason: Literal["left", "removed", "gone"]


class ListenerLeft(TypedDict):  # published by the service; sockets get them in `listeners_left` frames
    type: Literal["listener_left"]
    user_id: int  # a guest's signal id for a guest


class ListenersLeft(TypedDict):
    """What a socket receives: the listeners (and guests) whose last connection closed or went
    stale in the last LISTENERS_LEFT_INTERVAL. A listener who came back meanwhile is not named.
    Like ``participant_left``, a page hangs up any audio link it had with each of them."""

    type: Literal["listeners_left"]
    user_ids: list[int]


class RoleChanged(TypedDict):
    type: Literal["role_changed"]
    v: int
    participant: ParticipantView  # with the new role
    previous: Role
    by: int | None  # who did it (None: the system, e.g. an absent speaker's slot freed)


class Muted(TypedDict):
    type: Literal["muted"]
    v: int
    user_id: int
    muted: bool
    by: int  # equals user_id when self-muted


class HandRaised(TypedDict):
    type: Literal["hand_raised"]
    v: int
    hand: HandView


class HandLowered(TypedDict):
    type: Literal["hand_lowered"]
    v: int
    user_id: int
    reason: Literal["lowered", "dismissed", "accepted", "left"]


class Invited(TypedDict):
    type: Literal["invited"]
    v: int
    user_id: int
    by: int


class InviteCleared(TypedDict):
    type: Literal["invite_cleared"]
    v: int
    user_id: int
    reason: Literal["accepted", "declined", "left"]


class Reaction(TypedDict):  # published by the service; sockets get them in `reactions` frames
    type: Literal["reaction"]
    user_id: int
    emoji: str


class ReactionItem(TypedDict):
    user_id: int
    emoji: str


class Reactions(TypedDict):
    """What a socket receives: the reactions of the last REACTIONS_INTERVAL, oldest first, at most
    REACTIONS_PER_FRAME of them."""

    type: Literal["reactions"]
    items: list[ReactionItem]


class SpeakingEvent(TypedDict):
    type: Literal["speaking"]
    user_id: int
    on: bool


class ListenerCount(TypedDict):
    type: Literal["listener_count"]
    count: int  # guests included
    guests: int
    seq: int  # grows with every change of the audience: each process sends only the newest


class CaptionsToggled(TypedDict):
    type: Literal["captions_toggled"]
    v: int
    on: bool


class RecordingToggled(TypedDict):  # recording started or stopped: show or hide REC
    type: Literal["recording_toggled"]
    v: int
    on: bool


class Caption(TypedDict):
    """Recognised speech (rooms/captions). Partials of one utterance replace each other in place;
    the final settles it. Only finals are kept for the transcript."""

    type: Literal["caption"]
    user_id: int  # the speaker
    name: str  # the speaker's name as shown
    text: str
    final: bool
    utterance: int  # the same for every partial and the final of one utterance of one speaker
    start: float  # seconds since the Space started
    end: float


class Captions(TypedDict):
    """What a socket receives: the `caption` events of the last CAPTIONS_INTERVAL, oldest first,
    only the newest text of each utterance."""

    type: Literal["captions"]
    lines: list[Caption]


class CaptionsLagging(TypedDict):  # to the host only: recognition fell behind or restarted
    type: Literal["captions_lagging"]
    user_id: int  # whose captions
    message: str


class SpaceEnded(TypedDict):  # then the server closes with CLOSE_ENDED
    type: Literal["space_ended"]
    reason: Literal["host", "moderator", "host_gone"]


class SignalEvent(TypedDict):
    type: Literal["signal"]
    from_: int  # sent on the wire as "from"
    kind: SignalKind
    data: dict


EVENT_TYPES: tuple[str, ...] = (
    "snapshot",
    "ok",
    "pong",
    "error",
    "participant_joined",
    "participant_left",
    "listeners_left",
    "role_changed",
    "muted",
    "hand_raised",
    "hand_lowered",
    "invited",
    "invite_cleared",
    "reactions",
    "speaking",
    "listener_count",
    "captions_toggled",
    "recording_toggled",
    "captions",
    "captions_lagging",
    "space_ended",
    "signal",
)

# --- the captions uplink (`/ws/spaces/<id>/captions/`, rooms/captions/consumer.py) ---------------
#
# Client → server: binary frames only, each 20–100 ms of 16 kHz mono s16le PCM
# (rooms/captions/frames.py). Server → client: ``captions_status`` on connect and whenever the
# person's right to be captioned changes, and ``error`` for refused frames (at most one per code
# per second). Same entry rules and close codes as the Space socket, plus CLOSE_CAPTIONS_REPLACED.

CLOSE_CAPTIONS_REPLACED = 4409  # the same person opened a newer captions socket in this Space

CAPTIONS_ERROR_CODES: dict[str, str] = {
    "not_binary": "Audio must be binary frames.",
    "empty": "The frame had no samples.",
    "odd_length": "Not a whole number of 16-bit samples.",
    "too_large": "Larger than 100 ms.",
    "bad_size": "Not one of the accepted lengths (20, 40, 60, 80, 100 ms).",
    "flood": "Faster than 1.5x real time (one second of burst allowed); the frame was dropped.",
    "not_live": "The Space is not live.",
    "captions_off": "The host has captions off.",
    "not_on_stage": "Only stage members are captioned.",
    "muted": "Muted people are not captioned.",
}


class CaptionsStatus(TypedDict):
    type: Literal["captions_status"]
    sending: bool  # send audio only while the last status said true
    sample_rate: NotRequired[int]  # with sending=true: 16000
    frame_ms: NotRequired[list[int]]  # accepted frame lengths
    recommended_frame_ms: NotRequired[int]
    code: NotRequired[str]  # with sending=false: a key of CAPTIONS_ERROR_CODES
    message: NotRequired[str]
