"""The CSRF token pages carry (spaces_project.context_processors.csrf): masked with randomness read
a block at a time instead of Django's one read per character, and accepted by Django's own CSRF
check."""

from __future__ import annotations

import collections
import os
import re

import pytest
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH, CSRF_TOKEN_LENGTH
from django.test import Client
from django.urls import reverse

from spaces_project import context_processors
from spaces_project.context_processors import _RandomBytes, mask_csrf_secret
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def form_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


@pytest.fixture
def signed_in():
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory())
    return client


def test_a_first_visit_gets_a_cookie_and_a_token_that_django_accepts():
    client = Client(enforce_csrf_checks=True)
    page = client.get(reverse("account_login"))
    assert "csrftoken" in page.cookies
    login = client.post(reverse("account_login"), {"csrfmiddlewaretoken": form_token(page.content.decode())})
    assert login.status_code == 200  # the form answers (empty fields), not a 403


def test_every_page_gets_a_fresh_mask_of_the_same_secret_and_each_is_accepted(signed_in):
    first, second = (signed_in.get(reverse("home")) for _ in range(2))
    tokens = [form_token(page.content.decode()) for page in (first, second)]
    assert tokens[0] != tokens[1]
    assert all(len(t) == CSRF_TOKEN_LENGTH and set(t) <= set(CSRF_ALLOWED_CHARS) for t in tokens)
    # The cookie's expiry is renewed, as Django does whenever a page uses the token.
    assert "csrftoken" in second.cookies
    # The hx-headers token for htmx is the same one the page's forms carry.
    assert f'"X-CSRFToken": "{tokens[1]}"' in second.content.decode()
    for token in tokens:
        response = signed_in.post(reverse("notifications:mark_all_read"), {"csrfmiddlewaretoken": token})
        assert response.status_code == 302  # marked read, back to the inbox


def test_a_tampered_token_is_refused(signed_in):
    token = form_token(signed_in.get(reverse("home")).content.decode())
    flipped = token[:-1] + ("a" if token[-1] != "a" else "b")
    response = signed_in.post(reverse("account_logout"), {"csrfmiddlewaretoken": flipped})
    assert response.status_code == 403


def test_masks_are_unbiased_over_the_alphabet():
    secret = "A" * CSRF_SECRET_LENGTH  # index 26: the mask shows through the cipher as a shift
    counts = collections.Counter()
    for _ in range(20_000):
        counts.update(mask_csrf_secret(secret)[:CSRF_SECRET_LENGTH])
    assert set(counts) == set(CSRF_ALLOWED_CHARS)
    expected = 20_000 * CSRF_SECRET_LENGTH / len(CSRF_ALLOWED_CHARS)  # ~10,300 each
    # A byte taken modulo 62 would make 8 letters 25 % likelier; sampling noise is about 1 %.
    assert max(counts.values()) / expected < 1.06
    assert min(counts.values()) / expected > 0.94


def test_randomness_is_read_a_block_at_a_time_and_each_byte_handed_out_once(monkeypatch):
    blocks = []
    real_urandom = os.urandom

    def urandom(n):
        blocks.append(real_urandom(n))
        return blocks[-1]

    monkeypatch.setattr(context_processors.os, "urandom", urandom)
    source = _RandomBytes()
    taken = b"".join(source.take(40) for _ in range(250))
    assert [len(block) for block in blocks] == [4096, 4096, 4096]  # 10,000 bytes: three reads, not 250
    # Handed out in order, none twice: what was read, less the 2,288 bytes still kept.
    assert taken == b"".join(blocks)[:10_000]
    assert len(source.take(5000)) == 5000  # more than a block at once


def test_a_forked_child_does_not_hand_out_its_parents_bytes():
    source = _RandomBytes()
    source.take(1)  # the parent now keeps 4,095 bytes
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write_end, source.take(32))
        os._exit(0)
    os.waitpid(pid, 0)
    childs = os.read(read_end, 32)
    os.close(read_end)
    os.close(write_end)
    assert len(childs) == 32
    assert childs != source.take(32)  # without the reset at fork they would be the same bytes
