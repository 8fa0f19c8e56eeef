"""Who a guest is: listening without an account, a person is known by a random key in a signed
cookie (django.core.signing), so reloads and extra tabs count as the same guest."""

from __future__ import annotations

import secrets

from django.core import signing
from django.http import HttpRequest, HttpResponse

GUEST_COOKIE = "spaces_guest"
GUEST_COOKIE_SALT = "rooms.guest"
GUEST_COOKIE_MAX_AGE = 365 * 24 * 3600


def new_guest_key() -> str:
    return secrets.token_hex(16)


def _signer() -> signing.TimestampSigner:
    return signing.get_cookie_signer(salt=GUEST_COOKIE_SALT)


def guest_cookie_value(key: str) -> str:
    return _signer().sign(key)


def guest_key_from_cookie(value: str | None) -> str | None:
    """The key in a guest cookie's value, or None when there is none or it isn't ours (forged,
    tampered with, expired). Signed and checked here (not with ``set_signed_cookie``), so the
    websocket, which has cookies but no request, checks it the same way."""
    if not value:
        return None
    try:
        key = _signer().unsign(value, max_age=GUEST_COOKIE_MAX_AGE)
    except signing.BadSignature:
        return None
    return key if len(key) == 32 else None


def guest_remember(request: HttpRequest, response: HttpResponse) -> None:
    """Give a signed-out visitor a guest cookie, unless they have a valid one."""
    if guest_key_from_cookie(request.COOKIES.get(GUEST_COOKIE)):
        return
    response.set_cookie(
        GUEST_COOKIE,
        guest_cookie_value(new_guest_key()),
        max_age=GUEST_COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )
