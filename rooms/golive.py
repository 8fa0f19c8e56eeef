"""Go-live notices: when a Space starts, every follower of its host hears "Ana is live: <title>".

The path, all through the notifications outbox:

1. `space_start` / `space_create` call `golive_plan` inside their transaction; after commit it
   enqueues one `rooms.tasks.golive_fanout` Celery task.
2. `golive_fanout` reads the host's follower ids (one query, ids only) and cuts them into chunks
   of `rules.GOLIVE_CHUNK`, people with a page open first (`notifications.selectors.online_among`),
   and enqueues a `rooms.tasks.golive_send` task per chunk.
3. `golive_send` writes the chunk's outbox rows in one bulk insert, already claimed by itself, and
   sends them at once (`notifications.outbox.deliveries_send_now`): in-app notices in bulk
   statements, pushed over `/ws/notifications/` to the followers whose page is open; emails only
   to followers who turned on "Notify me by email when … goes live" (`accounts.Follow.email_on_live`).

Both tasks are acks_late: a worker that dies mid-task leaves its message to be run again. The
beat's sweep stays the safety net: rows a dead worker had claimed are taken over by it after the
claim timeout and sent like any other. A Space that has ended by the time a chunk runs is not
announced (the chunk writes nothing, and rows already written are cancelled at send time by
`outbox_rows_not_owed`).

One notice per person per Space: the rows share their dedupe key with the "is live" notice of a
reminder (`rooms.reminders.SPACE_LIVE`), which is written first, in the starting transaction. A
follower who also set a reminder gets the reminder's notice (with its email and "Remove this
reminder" link) and nothing more.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Follow, User
from accounts.services import follow_email_on_live_set
from notifications import outbox
from notifications import services as notifications
from notifications.hooks import LinkAction, LinkDone
from notifications.models import Delivery
from notifications.selectors import online_among

from . import rules
from .models import Space

# The kind of a follower's go-live row.
FOLLOWED_LIVE = "followed_live"
# The action of the signed "Stop emails when Ana goes live" link at the foot of those emails.
LIVE_EMAIL_OFF = "live_email_off"


def dedupe_key(space_id: int, user_id: int) -> str:
    """Shared with the reminders' "is live" row (rooms.reminders.space_live_notify)."""
    return f"space_live:{space_id}:{user_id}"


def golive_plan(*, space: Space) -> None:
    """Call inside the transaction that puts `space` live: its followers are told after commit."""
    from .tasks import golive_fanout

    if not space.host.follower_count:
        return
    space_id = space.pk
    # robust: a broker that is down must not fail the start; the Space is live either way.
    transaction.on_commit(lambda: golive_fanout.delay(space_id), robust=True)


def golive_chunks(*, space_id: int) -> list[list[int]]:
    """The host's followers in chunks, those with a page open first. Empty if the Space is not live."""
    host_id = (
        Space.objects.filter(pk=space_id, state=Space.State.LIVE).values_list("host_id", flat=True).first()
    )
    if host_id is None:
        return []
    ids = list(
        Follow.objects.filter(followee_id=host_id)
        .order_by("follower_id")
        .values_list("follower_id", flat=True)
    )
    online = online_among(user_ids=ids)
    ordered = [pk for pk in ids if pk in online] + [pk for pk in ids if pk not in online]
    size = max(1, rules.GOLIVE_CHUNK)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def golive_send(*, space_id: int, follower_ids: list[int]) -> dict[str, int]:
    """Write one chunk's go-live rows and send them now. Idempotent: a retried chunk writes nothing
    new (dedupe keys) and sends nothing twice (the outbox's claim)."""
    space = Space.objects.select_related("host").filter(pk=space_id, state=Space.State.LIVE).first()
    if space is None or not follower_ids:
        return {"not_live": len(follower_ids)} if space is None else {}
    emails = dict(
        Follow.objects.filter(followee_id=space.host_id, follower_id__in=follower_ids).values_list(
            "follower_id", "email_on_live"
        )
    )
    now = timezone.now()
    title = f"{space.host.name} is live: {space.title}"
    url = f"{settings.SITE_URL}{space.get_absolute_url()}"
    rows = [
        notifications.delivery_row(
            recipient_id=pk,
            space_id=space.pk,
            kind=FOLLOWED_LIVE,
            title=title,
            body="Tap to join and listen in.",
            url=url,
            send_email=emails[pk],
            dedupe_key=dedupe_key(space.pk, pk),
            due_at=now,
        )
        for pk in follower_ids
        if pk in emails  # still following
    ]
    # Written already claimed by this task and sent at once; rows that exist (a reminder's "is
    # live" notice, or this chunk's earlier run) are left to whoever holds them.
    return outbox.deliveries_send_now(rows=rows)


# --- the outbox's questions (notifications.hooks, registered in RoomsConfig.ready) ------------


def outbox_rows_not_owed(rows: list[Delivery]) -> set[int]:
    """A follower's go-live notice is owed only while the Space is still live: a host who started
    and ended within a minute does not leave notices behind."""
    ours = [r for r in rows if r.kind == FOLLOWED_LIVE and r.space_id]
    if not ours:
        return set()
    live = set(
        Space.objects.filter(pk__in={r.space_id for r in ours}, state=Space.State.LIVE).values_list(
            "pk", flat=True
        )
    )
    return {r.pk for r in ours if r.space_id not in live}


def email_live_off_link(delivery: Delivery) -> list[tuple[str, str]]:
    if delivery.kind != FOLLOWED_LIVE or not delivery.space_id:
        return []
    token = notifications.email_link_token(
        user_id=delivery.recipient_id, action=LIVE_EMAIL_OFF, space_id=delivery.space_id
    )
    host = (
        Space.objects.filter(pk=delivery.space_id).values_list("host__display_name", "host__username").first()
    )
    name = (host[0] or host[1]) if host else "this host"
    return [
        (
            f"Stop emails when {name} goes live",
            settings.SITE_URL + reverse("notifications:email_link", args=[token]),
        )
    ]


def _linked_host(payload: dict) -> User:
    space = Space.objects.select_related("host").filter(pk=payload.get("s")).first()
    if space is None:
        raise ValidationError(
            "That Space no longer exists, so we can't tell whose emails to stop.", code="gone"
        )
    return space.host


def _live_email_off(*, user: User, payload: dict) -> LinkDone:
    host = _linked_host(payload)
    changed = follow_email_on_live_set(follower=user, followee=host, on=False)
    return LinkDone(changed=changed, template="rooms/live_email_off_done.html", context={"host": host})


# The "Stop emails when Ana goes live" link: opening it asks, its button turns the emails off.
EMAIL_LIVE_OFF = LinkAction(
    confirm_template="rooms/live_email_off_confirm.html",
    describe=lambda *, user, payload: {"host": _linked_host(payload)},
    apply=_live_email_off,
)
