"""Signed out, in real Chromium: a guest hears the stage in both audio modes, the embeddable player
plays inside an iframe of another origin, and every other page refuses to be framed."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from rooms import services
from tests.conftest import free_port
from tests.factories import UserFactory
from tests.test_audio_browser import B, act, browsers, listen, mode, open_space, server, tones, until_heard  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def signed_out_page(browser, url: str):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(url)
    return page


def test_a_signed_out_visitor_hears_the_stage(server, browsers, mode):  # noqa: F811
    host = UserFactory(hosting_granted=True)
    space = services.space_create(host=host, title=f"Open to all over {mode}")
    host_page = open_space(browsers(B), server, host, space)
    act(host_page, type="unmute_self")
    page = signed_out_page(browsers(), f"{server.url}/spaces/{space.pk}/")
    page.wait_for_selector("#connection[data-status=open]")
    page.wait_for_function("window.spacesAudio !== undefined")
    until_heard(page, B, timeout=20)
    assert page.get_by_test_id("guest-signup").is_visible()
    host_page.wait_for_selector("[data-testid=guest-count]")
    assert "+ 1 guest" in host_page.get_by_test_id("guest-count").inner_text()


@pytest.fixture
def other_origin() -> Iterator[callable]:
    """A tiny web server on another port (and host name) serving one page with an iframe."""
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    port = free_port()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def page_with_iframe(name: str, src: str) -> str:
        pages[f"/{name}"] = (
            f'<!doctype html><title>Blog</title><h1>My blog</h1><iframe id="player" src="{src}" '
            'width="400" height="210" allow="autoplay"></iframe>'
        ).encode()
        return f"http://localhost:{port}/{name}"

    yield page_with_iframe
    httpd.shutdown()


@pytest.mark.parametrize("mode", ["p2p"])
def test_the_embed_plays_inside_another_sites_iframe_and_other_pages_refuse_to_be_framed(
    server,  # noqa: F811
    browsers,  # noqa: F811
    mode,  # noqa: F811
    other_origin,
):
    host = UserFactory(hosting_granted=True)
    space = services.space_create(host=host, title="Embedded")
    host_page = open_space(browsers(B), server, host, space)
    act(host_page, type="unmute_self")

    blog = signed_out_page(browsers(), other_origin("post", f"{server.url}/spaces/{space.pk}/embed/"))
    frame = blog.frame_locator("#player")
    frame.get_by_test_id("listen").click()
    player = next(f for f in blog.frames if "/embed/" in f.url)
    player.wait_for_function("window.spacesAudio !== undefined")
    until_heard(player, B, timeout=20)
    assert "1" in frame.locator("#listener-count").inner_text()

    # The Space page itself in an iframe: Chromium refuses to show it (X-Frame-Options: DENY).
    framed = signed_out_page(browsers(), other_origin("steal", f"{server.url}/spaces/{space.pk}/"))
    framed.wait_for_timeout(1500)
    inner = next(f for f in framed.frames if f != framed.main_frame)
    assert "guest-banner" not in inner.content()
    assert "space-title" not in inner.content()
