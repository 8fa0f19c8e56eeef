"""Validators every app's forms and services share (accounts is the lowest layer)."""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError

# Control characters (Cc: CR, LF, tab, NUL, ...) and the Unicode line and paragraph separators.
_NOT_ON_ONE_LINE = {"Cc", "Zl", "Zp"}


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(ch) in _NOT_ON_ONE_LINE for ch in value)


def validate_single_line(value: str) -> None:
    """Titles, topics and names are shown on one line and go into email subjects: no line breaks,
    tabs or other control characters."""
    if value and has_control_characters(value):
        raise ValidationError(
            "Use one line of text, without line breaks, tabs or other control characters.",
            code="control_characters",
        )


def one_line(value: str) -> str:
    """`value` with every control character or line break turned into a space, for places such as an
    email subject that must stay one line whatever was stored."""
    return " ".join(
        "".join(" " if unicodedata.category(ch) in _NOT_ON_ONE_LINE else ch for ch in value).split()
    )
