"""Reads about tickets that pages, the rooms app and the services share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.db.models import (
    Count,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from rooms.models import Space

from . import rules
from .commission import format_cents, rate_bps_for
from .gateway import is_test_mode, sales_enabled
from .models import Hold, LedgerEntry, PayoutAccount, Ticket, TicketSettings

# Tickets that occupy a seat: issued, or issued and being refunded right now.
SEAT_STATUSES = (Ticket.Status.VALID, Ticket.Status.REFUNDING)


# --- eligibility to sell ----------------------------------------------------


@dataclass(frozen=True)
class Condition:
    key: str
    label: str
    met: bool
    detail: str


@dataclass(frozen=True)
class SellerEligibility:
    conditions: list[Condition] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return all(c.met for c in self.conditions)

    @property
    def lacking(self) -> list[Condition]:
        return [c for c in self.conditions if not c.met]


def age_on(*, born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def recent_spaces_hosted(*, user, now=None) -> int:
    """Spaces the user actually went live with in the last rules.RECENT_DAYS days."""
    since = (now or timezone.now()) - timedelta(days=rules.RECENT_DAYS)
    return Space.objects.filter(host=user, started_at__gte=since).count()


def seller_eligibility(*, user, now=None) -> SellerEligibility:
    """Every condition for selling tickets, met or not, with words the host can act on."""
    now = now or timezone.now()
    need_followers = rules.MIN_FOLLOWERS
    need_age = rules.MIN_AGE
    need_spaces = rules.MIN_RECENT_SPACES
    days = rules.RECENT_DAYS

    if user.date_of_birth is None:
        age_met, age_detail = False, "Add your date of birth to your profile."
    else:
        age = age_on(born=user.date_of_birth, today=now.date())
        age_met = age >= need_age
        age_detail = "" if age_met else f"You can sell tickets from your {need_age}th birthday."

    hosted = recent_spaces_hosted(user=user, now=now)
    account = PayoutAccount.objects.filter(user=user).first()
    if account is None:
        payout_detail = "Connect a Stripe account so ticket money can reach you."
    elif not account.details_submitted:
        payout_detail = "Finish setting up your Stripe account."
    elif not account.ready:
        payout_detail = "Stripe is still reviewing your account; we'll update this when it's done."
    else:
        payout_detail = ""

    return SellerEligibility(
        conditions=[
            Condition(
                "followers",
                f"{need_followers:,} followers",
                user.follower_count >= need_followers,
                f"You have {user.follower_count:,}.",
            ),
            Condition("age", f"Aged {need_age} or over", age_met, age_detail),
            Condition(
                "recent_spaces",
                f"{need_spaces} Spaces hosted in the last {days} days",
                hosted >= need_spaces,
                f"You've hosted {hosted}.",
            ),
            Condition("payouts", "A payout account", account is not None and account.ready, payout_detail),
            Condition(
                "standing",
                "An account in good standing",
                not user.is_suspended,
                "Your account is suspended." if user.is_suspended else "",
            ),
        ]
    )


# --- seats ------------------------------------------------------------------


def seats_taken(*, space_id: int, exclude_hold_id: int | None = None) -> tuple[int, int]:
    """(sold, held) for a Space. A hold counts until it is closed, so sold + held never exceeds the
    cap even while a lapsed checkout is being expired at the provider."""
    sold = Ticket.objects.filter(space_id=space_id, status__in=SEAT_STATUSES).count()
    holds = Hold.objects.filter(space_id=space_id, status=Hold.Status.OPEN)
    if exclude_hold_id is not None:
        holds = holds.exclude(pk=exclude_hold_id)
    return sold, holds.count()


def lifetime_earnings_cents(*, host) -> int:
    """The host's share of every sale, less refunds: the figure that decides their commission rate."""
    return LedgerEntry.objects.filter(host=host).aggregate(total=Coalesce(Sum("host_share_cents"), 0))[
        "total"
    ]


# --- access -----------------------------------------------------------------


def has_ticket_access(*, space, user) -> bool:
    """May `user` enter `space` as far as tickets are concerned? Anyone, when it sells no tickets;
    otherwise its host, its co-hosts and invited speakers, and people holding a valid ticket (a
    ticket being refunded gives no entry). The Space's ticket settings are kept on it for its page."""
    if _ticket_settings_of(space) is None:
        return True
    if user is None or not user.is_authenticated:
        return False
    if user.pk == space.host_id:
        return True
    valid = Ticket.objects.filter(space_id=space.pk, holder_id=user.pk, status=Ticket.Status.VALID)
    return valid.exists() or _invited_on_stage(user_id=user.pk).filter(space_id=space.pk).exists()


def _invited_on_stage(*, user_id: int):
    from rooms.models import Participant

    return Participant.objects.filter(
        Q(role__in=[Participant.Role.COHOST, Participant.Role.SPEAKER]) | Q(invited_at__isnull=False),
        user_id=user_id,
        removed_at__isnull=True,
    )


def tickets_sold_expression() -> Subquery:
    """How many valid tickets each Space of a queryset has sold (None for none)."""
    sold = (
        Ticket.objects.filter(space=OuterRef("pk"), status=Ticket.Status.VALID)
        .values("space")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Subquery(sold, output_field=IntegerField())


def sales_closed_reason(*, ticket_settings: TicketSettings, now=None) -> str:
    """Why tickets for this Space can't be bought now, or "" if they can."""
    now = now or timezone.now()
    space = ticket_settings.space
    if ticket_settings.refunds_requested_at is not None or space.state == Space.State.CANCELLED:
        return "This Space was called off and every ticket refunded."
    if space.state == Space.State.ENDED:
        return "This Space has ended."
    if ticket_settings.sales_close_at is not None and now >= ticket_settings.sales_close_at:
        return "Ticket sales have closed."
    account = PayoutAccount.objects.filter(user_id=space.host_id).first()
    if space.host.is_suspended or account is None or not account.ready:
        return "Tickets aren't on sale right now."
    return ""


# --- the box on the Space page ----------------------------------------------


def _ticket_settings_of(space) -> TicketSettings | None:
    """The Space's ticket settings, or None: one query the first time, kept on the Space after."""
    try:
        return space.ticket_settings  # Django keeps it on the instance once read
    except TicketSettings.DoesNotExist:
        return None


def ticket_box(*, space, viewer) -> dict:
    """Context for templates/ticketing/_buy_box.html: `{"ticket_box": {...}}`.

    `ticket_box.mode` is one of: "none" (not ticketed, nothing to show), "sell" (the host may start
    selling), "locked" (the host may not sell yet: `lacking` says why), "host" (the host's
    figures), "holder", "checkout" (the viewer's checkout is open), "buy", "sign_in", "sold_out",
    "closed".
    """
    signed_in = viewer is not None and viewer.is_authenticated
    is_host = signed_in and viewer.pk == space.host_id
    ts = _ticket_settings_of(space)
    box: dict = {
        "mode": "none",
        "test_mode": is_test_mode(),
        "sales_off": not sales_enabled(),
        "space_id": space.pk,
    }
    if ts is None:
        if is_host and space.state in (Space.State.SCHEDULED, Space.State.LIVE):
            eligibility = seller_eligibility(user=viewer)
            if eligibility.allowed:
                box.update(mode="sell", settings_url=reverse("ticketing:settings", args=[space.pk]))
            else:
                # No button that leads to a refusal: a quiet line saying what is still missing.
                box.update(mode="locked", lacking=eligibility.lacking, seller_url=reverse("ticketing:seller"))
        return {"ticket_box": box}

    sold, held = seats_taken(space_id=space.pk)
    box.update(
        price=format_cents(ts.price_cents, ts.currency),
        price_cents=ts.price_cents,
        capacity=ts.capacity,
        sold=sold,
        held=held,
        remaining=max(ts.capacity - sold - held, 0),
        sales_close_at=ts.sales_close_at,
        buy_url=reverse("ticketing:buy", args=[space.pk]),
        settings_url=reverse("ticketing:settings", args=[space.pk]),
    )
    closed = sales_closed_reason(ticket_settings=ts)
    if is_host:
        box.update(mode="host", closed_reason=closed)
    elif (
        signed_in
        and Ticket.objects.filter(space_id=space.pk, holder=viewer, status=Ticket.Status.VALID).exists()
    ):
        box["mode"] = "holder"
    elif box["sales_off"]:
        box.update(mode="closed", closed_reason="Ticket sales are paused on this server.")
    elif closed:
        box.update(mode="closed", closed_reason=closed)
    elif not signed_in:
        box["mode"] = "sign_in"
    else:
        mine = (
            Hold.objects.filter(space_id=space.pk, buyer=viewer, status=Hold.Status.OPEN)
            .exclude(checkout_url="")
            .first()
        )
        if mine is not None and mine.expires_at > timezone.now():
            box.update(mode="checkout", checkout_url=mine.checkout_url, hold_expires_at=mine.expires_at)
        elif sold + held >= ts.capacity:
            box["mode"] = "sold_out"
        else:
            box["mode"] = "buy"
    return {"ticket_box": box}


# --- the host's summary of an ended Space ---------------------------------------


def summary_figures(*, space, **_signal) -> list[dict]:
    """rooms' `space_summary_figures` receiver: tickets sold and the host's share of their money,
    net of refunds, for a ticketed Space; nothing for one that sold no tickets."""
    ts = _ticket_settings_of(space)
    if ts is None:
        return []
    totals = LedgerEntry.objects.filter(space_id=space.pk).aggregate(
        sold=Count("pk", filter=Q(kind=LedgerEntry.Kind.SALE)),
        refunded=Count("pk", filter=Q(kind=LedgerEntry.Kind.REFUND)),
        host_share=Coalesce(Sum("host_share_cents"), 0),
    )
    return [
        {"key": "tickets_sold", "label": "Tickets sold", "value": f"{totals['sold'] - totals['refunded']:,}"},
        {
            "key": "ticket_revenue",
            "label": "Ticket revenue (your share)",
            "value": format_cents(totals["host_share"], ts.currency),
        },
    ]


# --- earnings ---------------------------------------------------------------


@dataclass(frozen=True)
class EarningsRow:
    space_id: int
    title: str
    state: str
    tickets_sold: int
    tickets_refunded: int
    gross_cents: int
    commission_cents: int
    net_cents: int
    refunds_cents: int


def host_earnings(*, host) -> dict:
    """Per Space and in total: gross sales, commission, net (host share after refunds), refunds.

    Two queries whatever the number of Spaces: one grouped aggregate over the ledger, one for the
    lifetime figure (which is the same sum, kept separate so it reads as the rule it is).
    """
    sale, refund = LedgerEntry.Kind.SALE, LedgerEntry.Kind.REFUND
    zero = 0
    rows = (
        LedgerEntry.objects.filter(host=host)
        .values("space_id", "space__title", "space__state")
        .annotate(
            sold=Count("pk", filter=Q(kind=sale)),
            refunded=Count("pk", filter=Q(kind=refund)),
            gross=Coalesce(Sum("gross_cents", filter=Q(kind=sale)), zero),
            commission=Coalesce(Sum("commission_cents"), zero),
            net=Coalesce(Sum("host_share_cents"), zero),
            refunds=Coalesce(Sum("gross_cents", filter=Q(kind=refund)), zero),
        )
        .order_by("-space_id")
    )
    per_space = [
        EarningsRow(
            space_id=r["space_id"],
            title=r["space__title"],
            state=r["space__state"],
            tickets_sold=r["sold"],
            tickets_refunded=r["refunded"],
            gross_cents=r["gross"],
            commission_cents=r["commission"],
            net_cents=r["net"],
            refunds_cents=-r["refunds"],
        )
        for r in rows
    ]
    totals = {
        "tickets_sold": sum(r.tickets_sold for r in per_space),
        "tickets_refunded": sum(r.tickets_refunded for r in per_space),
        "gross_cents": sum(r.gross_cents for r in per_space),
        "commission_cents": sum(r.commission_cents for r in per_space),
        "net_cents": sum(r.net_cents for r in per_space),
        "refunds_cents": sum(r.refunds_cents for r in per_space),
    }
    lifetime = totals["net_cents"]
    threshold = settings.SPACES_TICKET_THRESHOLD_CENTS
    rate = rate_bps_for(lifetime_cents=lifetime)
    return {
        "per_space": per_space,
        "totals": totals,
        "lifetime_cents": lifetime,
        "threshold_cents": threshold,
        "rate_bps": rate,
        "host_keeps_percent": (10_000 - rate) / 100,
        "high_keep_percent": (10_000 - settings.SPACES_TICKET_HIGH_COMMISSION_BPS) / 100,
        "to_threshold_cents": max(threshold - lifetime, 0),
    }


def sellable_spaces(*, host, limit: int = 20) -> QuerySet[Space]:
    """The host's live and scheduled Spaces, soonest first, each with its ticket settings (or None)."""
    return (
        Space.objects.filter(host=host, state__in=[Space.State.LIVE, Space.State.SCHEDULED])
        .select_related("ticket_settings")
        .order_by("-state", "scheduled_for", "-created_at")[:limit]
    )


def ticket_holder_ids(*, space) -> list[int]:
    """Everyone holding a ticket for the Space, including tickets being refunded right now (they
    still want to hear that the Space was moved or called off)."""
    return list(
        Ticket.objects.filter(space_id=space.pk, status__in=SEAT_STATUSES).values_list("holder_id", flat=True)
    )


def tickets_for_space(*, space) -> QuerySet[Ticket]:
    return Ticket.objects.filter(space=space).select_related("holder").order_by("-created_at")
