"""Small readers for settings that come from the environment (12-factor)."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlparse


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_int_or_off(name: str, default: int) -> int | None:
    """An integer setting that "off" (or "none") turns off: None."""
    raw = os.environ.get(name)
    if raw is not None and raw.strip().lower() in {"off", "none"}:
        return None
    return env_int(name, default)


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def email_settings_from_url(url: str) -> dict:
    """Parse EMAIL_URL such as smtp://user:pass@host:587/?tls=1 into Django settings."""
    parts = urlparse(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme not in {"smtp", "smtps", "submission"}:
        raise ValueError(f"EMAIL_URL scheme must be smtp or smtps, not {parts.scheme!r}")
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname or "localhost",
        "EMAIL_PORT": parts.port or (465 if parts.scheme == "smtps" else 25),
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_SSL": parts.scheme == "smtps" or query.get("ssl") in {"1", "true"},
        "EMAIL_USE_TLS": parts.scheme == "submission" or query.get("tls") in {"1", "true"},
        "EMAIL_TIMEOUT": 10,
    }
