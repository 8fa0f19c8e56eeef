"""Where the apps above rooms (ticketing, moderation) plug into it, without rooms importing them.

Each higher app registers here in its ``AppConfig.ready()``; docs/architecture.md lists every hook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import Expression
from django.dispatch import Signal


@dataclass(frozen=True)
class EntryRule:
    """A reason to keep someone out of a live Space: `lets_in(space=, user=)` says whether this rule
    lets a signed-in person in; `refusal` is what they are told otherwise."""

    name: str
    lets_in: Callable[..., bool]
    refusal: str


# Asked, in the order registered, by rooms.access.entry_refusal after rooms' own rules.
entry_rules: list[EntryRule] = []

# Each returns extra context for the page of a Space (live or scheduled): f(space=, viewer=) -> dict.
space_page_context: list[Callable[..., dict]] = []

# Extra per-Space figures for the moderators' list of Spaces: {name: f() -> expression over a Space
# queryset} (ticketing: "n_tickets", tickets sold).
space_admin_figures: dict[str, Callable[[], Expression]] = {}

# Each returns the ids of people who should hear when a scheduled Space moves or is cancelled,
# beyond those who set a reminder: f(space=) -> ids (ticketing: its ticket holders).
space_audience: list[Callable[..., Iterable[int]]] = []

# Sent inside the transaction that cancels a scheduled Space (space=, by=, reason= "cancelled" by
# its host or "moderator"); a receiver's writes commit or roll back with the cancellation.
space_cancelled = Signal()

# Sent inside the transaction that ends a live Space (space=), as its summary is computed; each
# receiver returns a list of extra figures for the host, [{"key", "label", "value"}] (ticketing:
# tickets sold and ticket revenue).
space_summary_figures = Signal()

# Sent inside the transaction that removes a participant from a Space (space=, participant=, by=).
participant_removed = Signal()


def entry_rule_register(rule: EntryRule) -> None:
    if all(known.name != rule.name for known in entry_rules):
        entry_rules.append(rule)


def space_audience_register(provider: Callable[..., Iterable[int]]) -> None:
    if provider not in space_audience:
        space_audience.append(provider)


def space_page_context_register(provider: Callable[..., dict]) -> None:
    if provider not in space_page_context:
        space_page_context.append(provider)


def space_page_extra(*, space, viewer) -> dict:
    context: dict = {}
    for provider in space_page_context:
        context.update(provider(space=space, viewer=viewer))
    return context
