"""A live Space in a real browser: a host and two listeners see each change within a second."""

import pytest

from accounts.models import User
from rooms import services
from tests.conftest import screenshot
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
WITHIN = 1000  # ms: every change must reach every page within a second


def open_space(browser_context, server, user, space, viewport):
    page = browser_context(server=server, user=user, **viewport).new_page()
    page.goto(f"{server.url}/spaces/{space.pk}/")
    page.wait_for_selector("#connection[data-status=open]")
    return page


def test_host_and_two_listeners_see_every_change(asgi_server, browser_context):
    host = UserFactory(username="hostess", display_name="Ana Host", hosting_granted=True)
    amy = UserFactory(username="amy", display_name="Amy Listener")
    bob = UserFactory(username="bob", display_name="Bob Listener")
    space = services.space_create(
        host=host,
        title="Open source radio",
        topics=["radio", "oss"],
        speak_policy="everyone",
        captions_enabled=False,
    )

    host_page = open_space(browser_context, asgi_server, host, space, DESKTOP)
    amy_page = open_space(browser_context, asgi_server, amy, space, PHONE)
    bob_page = open_space(browser_context, asgi_server, bob, space, PHONE)
    pages = (host_page, amy_page, bob_page)
    for page in pages:
        page.wait_for_selector("[data-testid=seat-hostess]")
    host_page.wait_for_selector("[data-testid=listener-amy]")
    host_page.wait_for_selector("[data-testid=listener-bob]")
    # listener_count is coalesced to one event a second per Space (docs/protocol.md).
    host_page.wait_for_function("document.querySelector('#listener-count').textContent === '2'", timeout=2500)

    # Amy raises her hand; the host sees it.
    amy_page.get_by_test_id("hand").click()
    host_page.wait_for_selector("[data-testid=hand-amy]", timeout=WITHIN)
    screenshot(host_page, "space-host-hand-desktop")

    # The host brings her up; everyone sees her on stage.
    host_page.get_by_test_id("accept-amy").click()
    for page in pages:
        page.wait_for_selector("[data-testid=seat-amy]", timeout=WITHIN)
    amy_page.get_by_test_id("mic").wait_for(timeout=WITHIN)
    # Amy left the audience: the count follows.
    host_page.wait_for_function("document.querySelector('#listener-count').textContent === '1'", timeout=2500)

    # Amy unmutes herself, then the host mutes her: everyone sees both.
    amy_page.get_by_test_id("mic").click()
    for page in pages:
        page.wait_for_selector("[data-testid=seat-amy] .mic-on", timeout=WITHIN)
    host_page.click("[data-testid=seat-amy] button")
    host_page.get_by_role("button", name="Mute", exact=True).click()
    for page in pages:
        page.wait_for_selector("[data-testid=seat-amy] .mic-off", timeout=WITHIN)
    # A listener has no way to unmute her.
    bob_page.click("[data-testid=seat-amy] button")
    assert bob_page.locator("#sheet-actions button").count() == 0
    bob_page.click("#sheet-close")

    # Bob reacts; the reaction shows on his avatar for everyone.
    bob_page.get_by_test_id("react").click()
    bob_page.click("[data-emoji='❤️']")
    for page in pages:
        page.wait_for_selector("[data-testid=listener-bob] .reaction-bubble.pop", timeout=WITHIN)
        assert page.locator("[data-testid=listener-bob] .reaction-bubble").inner_text() == "❤️"
    # Three more at once: the first goes out alone, the other two in one frame whose items the
    # page pops one after another; the last one sent is the one left showing (that frame is held
    # up to REACTIONS_INTERVAL, and its items spread over as long again).
    for emoji in ("😂", "💯", "👋"):
        bob_page.get_by_test_id("react").click()
        bob_page.click(f"[data-emoji='{emoji}']")
    host_page.wait_for_function(
        "document.querySelector('[data-testid=listener-bob] .reaction-bubble').textContent === '👋'",
        timeout=2 * WITHIN,
    )
    screenshot(amy_page, "space-speaker-phone")
    screenshot(bob_page, "space-listener-phone")
    screenshot(host_page, "space-host-desktop")

    # The host ends the Space; both listeners are told.
    host_page.once("dialog", lambda dialog: dialog.accept())
    host_page.get_by_test_id("end").click()
    for page in (amy_page, bob_page):
        page.wait_for_selector("[data-testid=ended]", timeout=WITHIN)
        assert "ended" in page.get_by_test_id("ended").inner_text().lower()
    screenshot(bob_page, "space-ended-phone")
    space.refresh_from_db()
    assert space.state == "ended"
    assert User.objects.filter(pk=host.pk).exists()
