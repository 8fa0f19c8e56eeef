"""Where the apps above accounts plug into it, without accounts importing them.

Each higher app registers here in its ``AppConfig.ready()``; docs/architecture.md lists every hook.
"""

from __future__ import annotations

from collections.abc import Callable

from django.dispatch import Signal

# Each returns extra context for a profile page: f(person=, viewer=) -> dict (moderation: whether
# the viewer has blocked this person from their Spaces).
profile_context: list[Callable[..., dict]] = []


# Sent inside the transaction of a moderator's action by an app that can't import moderation
# (by=, action= an AuditLog action such as "space_end" or "ticket_refund", target= a saved model
# instance, note=): moderation writes the audit row, which commits or rolls back with the action.
moderator_acted = Signal()


def profile_context_register(provider: Callable[..., dict]) -> None:
    if provider not in profile_context:
        profile_context.append(provider)


def profile_extra(*, person, viewer) -> dict:
    context: dict = {}
    for provider in profile_context:
        context.update(provider(person=person, viewer=viewer))
    return context


# Sent by `manage.py seed_demo` after the demo accounts exist (host=, people=): apps above add their
# own demo data (rooms: one finished Space with a short replay).
demo_seeded = Signal()
