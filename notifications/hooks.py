"""Where the apps above notifications plug into it, without notifications importing them.

Each higher app registers here in its ``AppConfig.ready()``; docs/architecture.md lists every hook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

# Each returns the ids of people who should hear when a scheduled Space moves or is cancelled,
# beyond those who set a reminder: f(space=) -> ids (ticketing: its ticket holders).
space_audience: list[Callable[..., Iterable[int]]] = []


def space_audience_register(provider: Callable[..., Iterable[int]]) -> None:
    if provider not in space_audience:
        space_audience.append(provider)
