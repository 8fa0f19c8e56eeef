"""Where the apps above notifications plug into it, without notifications importing them.

Each higher app registers here in its ``AppConfig.ready()``; docs/architecture.md lists every hook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# Asked at send time, with the rows a worker has just claimed: each returns the ids of rows that are
# no longer owed (rooms: a start-time notice for a Space that already started, a reminder that was
# removed). Those rows are cancelled instead of sent.
delivery_checks: list[Callable[[list], set[int]]] = []

# Extra links at the foot of an email: f(delivery) -> [(label, url)] (rooms: "Remove this reminder").
email_footer_links: list[Callable[..., list[tuple[str, str]]]] = []


@dataclass(frozen=True)
class LinkDone:
    """What a signed email link did: `changed` is False when it had nothing to do; the page shown is
    `template` with `context`."""

    changed: bool
    template: str
    context: dict


@dataclass(frozen=True)
class LinkAction:
    """An action a signed email link can carry. Opening the link (a GET) shows `confirm_template`
    with the context `describe(user=, payload=)` returns; its button (a POST) runs
    `apply(user=, payload=)`. Both raise django.core.exceptions.ValidationError(code="gone") when
    the link's object no longer exists."""

    confirm_template: str
    describe: Callable[..., dict]
    apply: Callable[..., LinkDone]


# Actions beyond stop/resume emails: {action: LinkAction} (rooms: "unremind").
email_link_actions: dict[str, LinkAction] = {}


def delivery_check_register(check: Callable[[list], set[int]]) -> None:
    if check not in delivery_checks:
        delivery_checks.append(check)


def email_footer_links_register(provider: Callable[..., list[tuple[str, str]]]) -> None:
    if provider not in email_footer_links:
        email_footer_links.append(provider)


def not_owed(rows: list) -> set[int]:
    return {pk for check in delivery_checks for pk in check(rows)}


def footer_links(delivery) -> list[tuple[str, str]]:
    return [link for provider in email_footer_links for link in provider(delivery)]
