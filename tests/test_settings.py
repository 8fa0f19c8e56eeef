"""Settings come from the environment; production refuses to start unsafe."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from spaces_project.env import email_settings_from_url, env_int_or_off

ROOT = Path(__file__).resolve().parent.parent


def run_check(env: dict, *args: str) -> subprocess.CompletedProcess:
    dropped = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE"}  # the last: browser tests
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "manage.py", "check", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_without_secret_key():
    result = run_check({"DEBUG": "0", "ALLOWED_HOSTS": "example.com"})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_refuses_a_short_secret_key():
    result = run_check({"DEBUG": "0", "SECRET_KEY": "short", "ALLOWED_HOSTS": "example.com"})
    assert result.returncode != 0
    assert "at least 50" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    result = run_check({"DEBUG": "0", "SECRET_KEY": "x" * 20 + "y" * 40})
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is not set" in result.stderr


PRODUCTION = {"DEBUG": "0", "ALLOWED_HOSTS": "spaces.example.com", "STRIPE_TEST_MODE": ""}


def test_check_deploy_is_clean_in_production_shape():
    result = run_check(
        {
            **PRODUCTION,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "STRIPE_SECRET_KEY": "sk_live_x",
            "STRIPE_WEBHOOK_SECRET": "whsec_x",
        },
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_check_deploy_warns_that_ticket_sales_are_off_without_a_stripe_key():
    result = run_check(
        {**PRODUCTION, "SECRET_KEY": secrets.token_urlsafe(50), "STRIPE_SECRET_KEY": ""}, "--deploy"
    )
    assert "ticketing.W001" in result.stderr + result.stdout
    assert "ticket sales are off" in result.stderr + result.stdout


def test_check_deploy_warns_about_simulated_payments_in_production():
    result = run_check(
        {
            **PRODUCTION,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "STRIPE_SECRET_KEY": "",
            "STRIPE_TEST_MODE": "1",
        },
        "--deploy",
    )
    assert "ticketing.W002" in result.stderr + result.stdout


def test_database_and_redis_urls_switch_engines():
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE']);"
        "print(s.CHANNEL_LAYERS['default']['BACKEND']);"
        "print(s.CELERY_BROKER_URL);"
        "print(s.EMAIL_BACKEND);"
        "print(s.DATABASES['default']['OPTIONS']['prepare_threshold'])"
    )
    env = {
        **os.environ,
        "DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "spaces_project.settings",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/spaces",
        "REDIS_URL": "redis://127.0.0.1:6379/3",
        "EMAIL_URL": "smtp://mailer:secret@127.0.0.1:2525",
    }
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    engine, layer, broker, email, prepare_threshold = out.stdout.split()
    assert engine == "django.db.backends.postgresql"
    assert layer.startswith("channels_redis.")
    assert broker == "redis://127.0.0.1:6379/3"
    assert email == "django.core.mail.backends.smtp.EmailBackend"
    assert prepare_threshold == "5"  # psycopg prepares what repeats (Django's default is never)


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, 5), ("", 5), ("2", 2), ("0", 0), ("off", None), ("None", None)]
)
def test_an_integer_setting_can_be_turned_off(monkeypatch, raw, expected):
    if raw is None:
        monkeypatch.delenv("SPACES_TEST_KNOB", raising=False)
    else:
        monkeypatch.setenv("SPACES_TEST_KNOB", raw)
    assert env_int_or_off("SPACES_TEST_KNOB", 5) == expected


def test_embedded_default_needs_no_server(settings):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "EMAIL_URL"}}
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], s.CELERY_BROKER_URL)"
    )
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**env, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "spaces_project.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split() == [
        "django.db.backends.sqlite3",
        "channels.layers.InMemoryChannelLayer",
        "filesystem://",
    ]


@pytest.mark.parametrize(
    ("url", "host", "port", "user", "tls", "ssl"),
    [
        ("smtp://127.0.0.1:2525", "127.0.0.1", 2525, "", False, False),
        ("smtp://a%40b.c:p%2Fw@mail.example.com:587/?tls=1", "mail.example.com", 587, "a@b.c", True, False),
        ("smtps://mail.example.com", "mail.example.com", 465, "", False, True),
    ],
)
def test_email_url_parsing(url, host, port, user, tls, ssl):
    parsed = email_settings_from_url(url)
    assert (parsed["EMAIL_HOST"], parsed["EMAIL_PORT"], parsed["EMAIL_HOST_USER"]) == (host, port, user)
    assert (parsed["EMAIL_USE_TLS"], parsed["EMAIL_USE_SSL"]) == (tls, ssl)


def test_email_url_with_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="smtp"):
        email_settings_from_url("http://example.com")


def _site_url(env: dict) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in {"SITE_URL", "SPACES_HOST", "SPACES_PORT"}}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; print(s.SITE_URL)",
        ],
        cwd=ROOT,
        env={**clean, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "spaces_project.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_site_url_follows_spaces_port_unless_set():
    assert _site_url({}) == "http://127.0.0.1:8000"
    assert _site_url({"SPACES_PORT": "8123"}) == "http://127.0.0.1:8123"
    assert _site_url({"SPACES_HOST": "0.0.0.0", "SPACES_PORT": "8123"}) == "http://127.0.0.1:8123"
    assert _site_url({"SPACES_HOST": "spaces.lan", "SPACES_PORT": "9000"}) == "http://spaces.lan:9000"
    assert _site_url({"SITE_URL": "https://spaces.example.com/", "SPACES_PORT": "8123"}) == (
        "https://spaces.example.com"
    )
