"""Strict mode: in CI (SPACES_STRICT_TESTS=1) a test whose infrastructure is missing fails, not skips."""

from __future__ import annotations

import os
import shutil

import pytest

STRICT = os.environ.get("SPACES_STRICT_TESTS", "") not in ("", "0", "false")


def require(condition: bool, what: str) -> None:
    """Skip (locally) or fail (strict) when `condition` is false."""
    if condition:
        return
    if STRICT:
        pytest.fail(f"strict mode: {what} is required but missing", pytrace=False)
    pytest.skip(f"{what} not available")


def require_binary(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"the {name!r} program")
    return path
