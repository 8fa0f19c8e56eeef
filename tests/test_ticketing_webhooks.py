"""The Stripe webhook endpoint: signatures checked by the stripe library, events applied once.

Payloads are signed here the way Stripe documents it (t=<unix time>,v1=<HMAC-SHA256 of "t.payload">),
independently of the library that verifies them.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.factories import UserFactory
from tests.test_ticketing_support import (
    begin,
    checkout_event,
    post_event,
    sign,
    ticketed_space,
    webhook_secret,  # noqa: F401 - fixture
)
from ticketing.models import Hold, LedgerEntry, PayoutAccount, Ticket, WebhookEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


@pytest.fixture
def open_hold():
    space = ticketed_space(price_cents=1999, capacity=3)
    return begin(space, UserFactory())


def nothing_changed(hold: Hold) -> None:
    hold.refresh_from_db()
    assert hold.status == Hold.Status.OPEN
    assert not Ticket.objects.exists()
    assert not LedgerEntry.objects.exists()
    assert not WebhookEvent.objects.exists()


def test_signed_completed_event_issues_the_ticket(client, open_hold):
    response = post_event(client, checkout_event(open_hold))
    assert response.status_code == 200
    assert response.content == b"ticket_issued"
    ticket = Ticket.objects.get(hold=open_hold)
    assert (ticket.price_cents, ticket.commission_cents, ticket.host_share_cents) == (1999, 60, 1939)
    assert ticket.stripe_payment_intent_id == f"pi_test_{open_hold.pk}"


def test_wrong_secret_is_refused_and_changes_nothing(client, open_hold):
    response = post_event(client, checkout_event(open_hold), secret="whsec_someone_else")
    assert response.status_code == 400
    nothing_changed(open_hold)


def test_missing_signature_is_refused(client, open_hold):
    assert post_event(client, checkout_event(open_hold), signature="").status_code == 400
    nothing_changed(open_hold)


def test_garbage_signature_header_is_refused(client, open_hold):
    assert post_event(client, checkout_event(open_hold), signature="t=abc,v1=").status_code == 400
    assert post_event(client, checkout_event(open_hold), signature="nonsense").status_code == 400
    nothing_changed(open_hold)


def test_payload_changed_after_signing_is_refused(client, open_hold):
    event = checkout_event(open_hold)
    signature = sign(json.dumps(event))
    event["data"]["object"]["amount_total"] = 1
    assert post_event(client, event, signature=signature).status_code == 400
    nothing_changed(open_hold)


def test_signature_older_than_five_minutes_is_refused(client, open_hold):
    event = checkout_event(open_hold)
    stale = sign(json.dumps(event), timestamp=int(time.time()) - 301)
    assert post_event(client, event, signature=stale).status_code == 400
    nothing_changed(open_hold)


def test_malformed_json_with_a_valid_signature_is_refused(client, open_hold):
    body = "{not json"
    response = client.post(
        "/stripe/webhook/", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(body)
    )
    assert response.status_code == 400
    nothing_changed(open_hold)


def test_no_webhook_secret_configured_refuses_everything(client, open_hold, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert post_event(client, checkout_event(open_hold)).status_code == 400
    nothing_changed(open_hold)


def test_only_post(client):
    assert client.get("/stripe/webhook/").status_code == 405


def test_replayed_event_changes_nothing_twice(client, open_hold):
    event = checkout_event(open_hold)
    assert post_event(client, event).content == b"ticket_issued"
    again = post_event(client, event)
    assert (again.status_code, again.content) == (200, b"duplicate_event")
    assert Ticket.objects.count() == 1
    assert LedgerEntry.objects.count() == 1
    assert WebhookEvent.objects.get(event_id=event["id"]).outcome == "ticket_issued"


def test_same_completion_under_another_event_id_changes_nothing(client, open_hold):
    post_event(client, checkout_event(open_hold))
    response = post_event(client, checkout_event(open_hold))  # new id, same session
    assert response.content == b"ticket_already_issued"
    assert Ticket.objects.count() == 1
    assert LedgerEntry.objects.count() == 1


def test_expired_after_completed_does_nothing(client, open_hold):
    post_event(client, checkout_event(open_hold, "completed"))
    response = post_event(client, checkout_event(open_hold, "expired"))
    assert (response.status_code, response.content) == (200, b"hold_already_closed")
    open_hold.refresh_from_db()
    assert open_hold.status == Hold.Status.COMPLETED
    assert Ticket.objects.get(hold=open_hold).status == Ticket.Status.VALID


def test_expired_releases_the_hold_once(client, open_hold):
    assert post_event(client, checkout_event(open_hold, "expired")).content == b"hold_released"
    assert post_event(client, checkout_event(open_hold, "expired")).content == b"hold_already_closed"
    open_hold.refresh_from_db()
    assert open_hold.status == Hold.Status.EXPIRED


def test_completed_with_payment_still_processing_waits_for_async_success(client, open_hold):
    pending = checkout_event(open_hold, payment_status="unpaid")
    assert post_event(client, pending).content == b"awaiting_payment"
    assert not Ticket.objects.exists()
    succeeded = checkout_event(open_hold)
    succeeded["type"] = "checkout.session.async_payment_succeeded"
    assert post_event(client, succeeded).content == b"ticket_issued"


def test_async_payment_failed_releases_the_seat(client, open_hold):
    failed = checkout_event(open_hold, payment_status="unpaid")
    failed["type"] = "checkout.session.async_payment_failed"
    assert post_event(client, failed).content == b"hold_released"


def test_checkout_sessions_that_are_not_ours_are_ignored(client):
    event = {
        "id": "evt_other",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {"object": {"id": "cs_other", "object": "checkout.session", "metadata": {}}},
    }
    assert post_event(client, event).content == b"not_a_ticket"
    event = {**event, "id": "evt_other_2", "type": "invoice.paid"}
    assert post_event(client, event).content == b"ignored"


def account_event(account_id: str, *, created: int, ready: bool, event_id: str) -> dict:
    return {
        "id": event_id,
        "type": "account.updated",
        "created": created,
        "data": {
            "object": {
                "id": account_id,
                "object": "account",
                "charges_enabled": ready,
                "payouts_enabled": ready,
                "details_submitted": True,
            }
        },
    }


def test_account_updated_keeps_payout_status_current_and_ignores_older_events(client):
    account = PayoutAccount.objects.create(user=UserFactory(), stripe_account_id="acct_123")
    now = int(time.time())
    assert post_event(
        client, account_event("acct_123", created=now, ready=True, event_id="evt_a2")
    ).content == (b"account_updated")
    # An older event ("not ready yet") delivered late must not undo the newer one.
    late = post_event(client, account_event("acct_123", created=now - 60, ready=False, event_id="evt_a1"))
    assert late.content == b"account_stale_event"
    account.refresh_from_db()
    assert account.ready and account.details_submitted
    # Stripe later disables payouts: a newer event applies.
    post_event(client, account_event("acct_123", created=now + 60, ready=False, event_id="evt_a3"))
    account.refresh_from_db()
    assert not account.ready


def test_account_updated_for_an_unknown_account_changes_nothing(client):
    event = account_event("acct_unknown", created=int(time.time()), ready=True, event_id="evt_u")
    assert post_event(client, event).content == b"account_unknown"
    assert not PayoutAccount.objects.exists()


def test_connect_endpoint_secret_is_accepted_alongside_the_platform_one(client, open_hold, settings):
    settings.STRIPE_WEBHOOK_SECRET = f"{settings.STRIPE_WEBHOOK_SECRET}, whsec_connect_endpoint"
    account = PayoutAccount.objects.create(user=UserFactory(), stripe_account_id="acct_c")
    event = account_event("acct_c", created=int(time.time()), ready=True, event_id="evt_connect")
    assert post_event(client, event, secret="whsec_connect_endpoint").content == b"account_updated"
    account.refresh_from_db()
    assert account.ready
    assert post_event(client, checkout_event(open_hold)).content == b"ticket_issued"
    assert post_event(client, checkout_event(open_hold), secret="whsec_neither").status_code == 400


def post_raw(client, payload: str, *, timestamp: int | None = None):
    return client.post(
        "/stripe/webhook/",
        data=payload.encode("utf-8", "surrogatepass"),
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload, timestamp=timestamp),
    )


def test_a_signature_from_an_hour_in_the_future_is_refused(client, open_hold):
    event = checkout_event(open_hold)
    ahead = sign(json.dumps(event), timestamp=int(time.time()) + 3600)
    assert post_event(client, event, signature=ahead).status_code == 400
    nothing_changed(open_hold)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda e: e.pop("data"),
        lambda e: e.pop("id"),
        lambda e: e.pop("type"),
        lambda e: e.update(created="yesterday"),
        lambda e: e.update(created=1.5),
        lambda e: e.update(id="evt_" + "x" * 300),
        lambda e: e.update(type="checkout.session.completed" + "x" * 200),
        lambda e: e.update(data=[1, 2]),
        lambda e: e["data"].update(object=[1]),
        lambda e: e["data"]["object"].update(metadata=["hold"]),
        lambda e: e["data"]["object"].update(amount_total="1999"),
        lambda e: e["data"]["object"].update(payment_intent={"id": 1}),
    ],
)
def test_a_correctly_signed_but_malformed_event_gets_400_and_changes_nothing(client, open_hold, mangle):
    event = checkout_event(open_hold)
    mangle(event)
    response = post_event(client, event)
    assert response.status_code == 400
    nothing_changed(open_hold)


@pytest.mark.parametrize(
    "payload", ["[1, 2]", "42", '"evt"', "null", "[" * 5000 + "]" * 5000, '{"id": "\\ud800"}']
)
def test_a_signed_body_that_is_not_an_event_object_gets_400(client, open_hold, payload):
    assert post_raw(client, payload).status_code == 400
    nothing_changed(open_hold)
