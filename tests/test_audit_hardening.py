"""Every moderator action writes its audit row; cancelling (with its refunds) needs the same
permission as ending a live Space."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from accounts.groups import MODERATORS, ensure_moderators_group
from moderation import services as moderation_services
from moderation.models import AuditLog
from rooms import scheduling
from rooms.models import Space
from tests.factories import UserFactory
from tests.rooms_support import join, live_space
from tests.test_ticketing_support import begin, checkout_event, ticketed_space
from ticketing import services as ticket_services
from ticketing.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def moderator():
    ensure_moderators_group()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=MODERATORS))
    return user


def sold_ticket(space) -> Ticket:
    hold = begin(space, UserFactory())
    assert ticket_services.stripe_event_handle(event=checkout_event(hold)) == "ticket_issued"
    return Ticket.objects.get(hold=hold)


def test_ending_a_space_from_the_spaces_admin_writes_its_audit_row(client, moderator):
    space = live_space()
    join(space)
    client.force_login(moderator)
    client.post(
        reverse("admin:rooms_space_changelist"), {"action": "end_spaces", "_selected_action": [space.pk]}
    )
    row = AuditLog.objects.get(action=AuditLog.Action.SPACE_END)
    assert (row.actor_id, row.target_type, row.target_id) == (moderator.pk, "space", space.pk)


def test_ending_from_the_moderation_service_writes_one_row_with_its_note(moderator):
    space = live_space()
    moderation_services.space_end_by_moderator(space=space, by=moderator, note="spam ring")
    rows = list(AuditLog.objects.filter(action=AuditLog.Action.SPACE_END))
    assert [(r.target_id, r.note) for r in rows] == [(space.pk, "spam ring")]


def test_a_host_ending_their_own_space_is_not_a_moderator_action():
    space = live_space()
    from rooms import services as room_services

    room_services.space_end(space=space, by=space.host)
    assert not AuditLog.objects.exists()


def test_a_moderator_refunding_a_ticket_writes_ticket_refund(moderator, django_capture_on_commit_callbacks):
    ticket = sold_ticket(ticketed_space(capacity=3))
    assert ticket_services.ticket_refund(ticket=ticket, by=moderator) is True
    row = AuditLog.objects.get(action=AuditLog.Action.TICKET_REFUND)
    assert (row.actor_id, row.target_id) == (moderator.pk, ticket.pk)


def test_staff_without_end_space_cannot_cancel_a_scheduled_space_or_refund_by_cancelling():
    space = ticketed_space(capacity=3)
    ticket = sold_ticket(space)
    staff = UserFactory(is_staff=True)
    with pytest.raises(PermissionDenied):
        scheduling.space_cancel(space=space, by=staff)
    space.refresh_from_db()
    ticket.refresh_from_db()
    assert space.state == Space.State.SCHEDULED and ticket.status == Ticket.Status.VALID


def test_a_moderator_cancelling_a_scheduled_space_writes_its_audit_row(moderator):
    space = ticketed_space(capacity=3)
    scheduling.space_cancel(space=space, by=moderator, reason="fraud")
    row = AuditLog.objects.get(action=AuditLog.Action.SPACE_END)
    assert (row.actor_id, row.target_id) == (moderator.pk, space.pk)
