"""Where the apps above accounts plug into it, without accounts importing them.

Each higher app registers here in its ``AppConfig.ready()``; docs/architecture.md lists every hook.
"""

from __future__ import annotations

from collections.abc import Callable

# Each returns extra context for a profile page: f(person=, viewer=) -> dict (moderation: whether
# the viewer has blocked this person from their Spaces).
profile_context: list[Callable[..., dict]] = []


def profile_context_register(provider: Callable[..., dict]) -> None:
    if provider not in profile_context:
        profile_context.append(provider)


def profile_extra(*, person, viewer) -> dict:
    context: dict = {}
    for provider in profile_context:
        context.update(provider(person=person, viewer=viewer))
    return context
