"""Property-based fuzzing of what strangers can send: websocket frames and signed webhook bodies.

Frames and events are drawn from a grammar of valid, malformed, over-long, deeply nested and
odd-unicode JSON (lone surrogates included, sent as JSON escapes). Whatever arrives, the answer is a
defined one (an `error` frame with a code from the protocol, or a 400), never a 1011 close, a
`server_error`, a 500 or a change of state. The example counts are bounded so the file runs in CI.
"""

from __future__ import annotations

import json
import random

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rooms import protocol
from rooms.models import Participant, Space
from spaces_project.asgi import application
from tests.factories import UserFactory
from tests.rooms_support import live_space, make_host, session_cookie
from tests.test_ticketing_support import begin, checkout_event, sign, ticketed_space
from ticketing.models import Hold, LedgerEntry, Ticket, WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

# Text of every kind: any code point, lone surrogates included.
ODD_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=40)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    ODD_TEXT,
    st.text(min_size=5000, max_size=20000, alphabet="ab"),  # over-long
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(ODD_TEXT, st.sampled_from(["to", "data"])), inner, max_size=4),
    ),
    max_leaves=12,
)
FIELD_NAMES = sorted({name for fields in protocol.ACTION_FIELDS.values() for name in fields})


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@st.composite
def action_frames(draw) -> dict:
    """Objects that look like actions: a real or made-up type, real field names with any values."""
    # "leave" is left out: its answer is a normal close, which the probe would take for a failure.
    types = sorted(set(protocol.ACTION_FIELDS) - {"leave"})
    frame = {"type": draw(st.one_of(st.sampled_from(types), ODD_TEXT, JSON))}
    for name in draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=4)):
        frame[name] = draw(JSON)
    if draw(st.booleans()):
        frame["ref"] = draw(st.one_of(ODD_TEXT, JSON))
    return frame


def as_text(value) -> str:
    return json.dumps(value)  # ASCII with \\u escapes: lone surrogates travel as valid UTF-8 text


FRAMES = st.one_of(
    action_frames().map(as_text),
    JSON.map(as_text),
    st.integers(min_value=100, max_value=5000).map(nested),
    st.integers(min_value=100, max_value=3000).map(lambda d: '{"type": "ping", "x": ' + nested(d) + "}"),
    st.text(max_size=200),  # not JSON at all
    st.binary(max_size=200),
)

# Error codes a person may be answered with; server_error and entry_refused are never right here.
ALLOWED = set(protocol.ERROR_CODES) - {"server_error", "entry_refused"}


def room_state(space_id: int) -> tuple:
    space = Space.objects.get(pk=space_id)
    people = tuple(
        Participant.objects.filter(space_id=space_id)
        .order_by("user_id")
        .values_list("user_id", "role", "muted", "hand_raised_at", "removed_at", "invited_at")
    )
    return space.state, space.version, space.captions_enabled, space.title, people


async def exchange(path: str, cookie: str, frame, state=None) -> tuple[list[dict], object, object]:
    """Send one frame, then a probe; return what came back before the probe's answer, and `state()`
    just before the frame and just after the answer. Fails on a close."""
    # Hypothesis seeds the global random module alike for every example; Channels names channels
    # with it, so without this each example's socket would reuse the last one's name.
    random.seed()
    ws = WebsocketCommunicator(
        application,
        path,
        headers=[
            (b"origin", b"http://127.0.0.1"),
            (b"host", b"127.0.0.1"),
            (b"cookie", f"sessionid={cookie}".encode()),
        ],
    )
    connected, code = await ws.connect(timeout=5)
    assert connected, code
    await ws.receive_output(timeout=5)  # snapshot / unread count
    before = await database_sync_to_async(state)() if state else None
    # The raw ASGI message, so empty frames go too (send_to refuses them).
    await ws.send_input({"type": "websocket.receive", "bytes" if isinstance(frame, bytes) else "text": frame})
    probe = "fuzz-probe"
    if path.startswith("/ws/spaces/"):
        await ws.send_to(text_data=json.dumps({"type": "ping", "ref": probe}))
    else:
        await ws.send_to(text_data=json.dumps({"type": "sync"}))
    answers: list[dict] = []
    while True:
        output = await ws.receive_output(timeout=5)
        assert output["type"] == "websocket.send", f"the socket closed: {output}"
        message = json.loads(output["text"])
        if message.get("ref") == probe or (
            message["type"] == "unread" and not path.startswith("/ws/spaces/")
        ):
            break
        answers.append(message)
    after = await database_sync_to_async(state)() if state else None
    await ws.disconnect()
    return answers, before, after


@pytest.fixture
def room(transactional_db):
    host = make_host()
    space = live_space(host)
    listener = UserFactory()
    return space, listener, session_cookie(listener)


@FUZZ
@given(frame=FRAMES)
def test_any_frame_on_the_space_socket_gets_a_defined_answer_and_no_bad_frame_changes_state(room, frame):
    space, _, cookie = room
    cache.clear()  # rate limits are tested on their own; here each example starts fresh
    answers, before, after = async_to_sync(exchange)(
        f"/ws/spaces/{space.pk}/", cookie, frame, lambda: room_state(space.pk)
    )
    errors = [a for a in answers if a["type"] == "error"]
    assert all(a["code"] in ALLOWED for a in errors), errors
    if errors:
        assert after == before


@FUZZ
@given(frame=FRAMES)
def test_any_frame_on_the_notifications_socket_gets_a_defined_answer(transactional_db, frame):
    person = UserFactory()
    answers, _, _ = async_to_sync(exchange)("/ws/notifications/", session_cookie(person), frame)
    assert all(a["type"] == "error" for a in answers), answers
    assert all(a["code"] in {"bad_json", "too_large", "unknown_type", "rate_limited"} for a in answers)


# --- the webhook -----------------------------------------------------------------------------


@st.composite
def events(draw, base: dict) -> str:
    """A real event's body with parts dropped, replaced by any JSON, or the whole of it replaced."""
    kind = draw(st.sampled_from(["mutate", "replace", "nest"]))
    if kind == "replace":
        return as_text(draw(JSON))
    if kind == "nest":
        return nested(draw(st.integers(min_value=100, max_value=5000)))
    event = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        obj = data.get("object") if isinstance(data.get("object"), dict) else {}
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        target = draw(st.sampled_from([event, data, obj, metadata]))
        if not target:
            continue
        key = draw(st.sampled_from(sorted(target)))
        if draw(st.booleans()):
            del target[key]
        else:
            target[key] = draw(JSON)
    # A fresh id, so a mutation that stays valid is not a mere replay.
    if isinstance(event.get("id"), str) and draw(st.booleans()):
        event["id"] = f"evt_fuzz_{draw(st.integers(min_value=0, max_value=10**9))}"
    return as_text(event)


OUTCOMES = {
    "ticket_issued",
    "duplicate_event",
    "not_a_ticket",
    "awaiting_payment",
    "account_updated",
    "account_stale_event",
    "account_unknown",
    "ignored",
}


def books() -> tuple:
    return (
        tuple(Hold.objects.order_by("pk").values_list("pk", "status")),
        tuple(Ticket.objects.order_by("pk").values_list("pk", "status")),
        LedgerEntry.objects.count(),
        WebhookEvent.objects.count(),
    )


@pytest.fixture
def signed_webhook(settings, transactional_db):
    from tests.test_ticketing_support import WEBHOOK_SECRET

    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    space = ticketed_space(capacity=5)
    return checkout_event(begin(space, UserFactory()))


def test_webhook_fuzz(signed_webhook, client):
    @FUZZ
    @given(body=events(signed_webhook))
    def check(body):
        before = books()
        response = client.post(
            "/stripe/webhook/", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(body)
        )
        assert response.status_code in (200, 400), response.status_code
        if response.status_code == 400:
            assert books() == before
        else:
            assert response.content.decode() in OUTCOMES or response.content.decode().startswith(
                ("hold_", "ticket_")
            )

    check()
