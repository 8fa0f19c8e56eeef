"""The whole ticket flow in headless Chromium, in the local test mode that `make run` uses.

A listener without a ticket is refused and shown the price; they buy through the test checkout,
come back to the Space, connect and hear the host's microphone (a 440 Hz tone) peer-to-peer.
The ticketing pages are screenshotted at phone and desktop widths and must not scroll sideways.
"""

from __future__ import annotations

import pytest

from rooms import services as rooms_services
from tests.audio_tools import launch_browser, listen, write_tone_wav
from tests.conftest import screenshot, session_cookie_for, start_asgi_server, stop_process
from tests.factories import UserFactory
from tests.test_ticketing_support import begin, checkout_event, eligible_host, scheduled_space
from ticketing import services
from ticketing.models import Hold, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TONE = 440


@pytest.fixture
def server(transactional_db):
    # The embedded default: no Stripe key (local test checkout), peer-to-peer audio.
    srv = start_asgi_server(extra_env={"JANUS_URL": "", "STRIPE_SECRET_KEY": ""}, name="daphne-tickets")
    yield srv
    stop_process(srv.proc)


def new_page(browser, server, user, *, width: int = 390, height: int = 844):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    context.add_cookies([session_cookie_for(user, server.url)])
    return context.new_page()


def no_sideways_scroll(page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def test_listener_without_ticket_is_refused_buys_enters_and_hears_the_stage(pw, server, tmp_path):
    host = eligible_host(hosting_granted=True)
    space = rooms_services.space_create(host=host, title="Paid AMA")
    services.ticket_settings_save(space=space, by=host, price_cents=500, capacity=20, sales_close_at=None)
    listener = UserFactory()
    space_url = f"{server.url}/spaces/{space.pk}/"

    host_browser = launch_browser(pw, wav=write_tone_wav(tmp_path / "host.wav", TONE))
    listener_browser = launch_browser(pw)
    try:
        host_page = new_page(host_browser, server, host, width=1280, height=800)
        host_page.goto(space_url)
        host_page.wait_for_selector("#connection[data-status=open]")
        host_page.wait_for_function("window.spacesAudio !== undefined")
        host_page.evaluate("() => window.spaceSocket.send({type: 'unmute_self'})")
        box = host_page.locator("[data-testid=ticket-box]")
        assert box.get_attribute("data-mode") == "host"
        assert "0 of 20 sold" in box.inner_text()

        page = new_page(listener_browser, server, listener)
        response = page.goto(space_url)
        assert response.status == 403
        assert "Buy a ticket" in page.locator("[data-testid=refusal]").inner_text()
        assert page.locator("[data-testid=ticket-price]").inner_text() == "$5.00"
        assert page.locator("#connection").count() == 0  # no socket without a ticket
        screenshot(page, "ticketing-space-refused-390")

        page.click("[data-testid=buy-ticket]")
        page.wait_for_selector("[data-testid=local-checkout]")
        assert "Test mode" in page.locator("[data-testid=test-mode]").inner_text()
        no_sideways_scroll(page)
        screenshot(page, "ticketing-local-checkout-390")
        page.click("[data-testid=pay-decline]")
        page.wait_for_selector("[data-testid=declined]")
        assert not Ticket.objects.filter(holder=listener).exists()
        page.click("[data-testid=pay-succeed]")

        page.wait_for_url(space_url)
        page.wait_for_selector("#connection[data-status=open]")
        assert page.locator("[data-testid=ticket-box]").get_attribute("data-mode") == "holder"
        assert Ticket.objects.get(holder=listener, space=space).status == Ticket.Status.VALID
        assert Hold.objects.get(buyer=listener).status == Hold.Status.COMPLETED

        # The listener hears the host's microphone.
        for _ in range(60):
            if listen(page, 200).heard(TONE):
                break
        else:
            raise AssertionError(f"{TONE} Hz never heard: {listen(page, 400).describe(TONE)}")
        screenshot(page, "ticketing-space-holder-390")

        host_page.reload()
        host_page.wait_for_selector("[data-testid=ticket-box]")
        assert "1 of 20 sold" in host_page.locator("[data-testid=ticket-box]").inner_text()
        screenshot(host_page, "ticketing-space-host-1280")
    finally:
        host_browser.close()
        listener_browser.close()


@pytest.mark.parametrize("width", [390, 1280])
def test_ticketing_pages_at_phone_and_desktop_widths(pw, server, width):
    host = eligible_host(follower_count=640)
    space = scheduled_space(host, title="A scheduled talk with a long enough title to wrap on phones")
    browser = launch_browser(pw)
    try:
        page = new_page(browser, server, host, width=width, height=900)
        page.goto(f"{server.url}/tickets/sell/")
        assert page.locator("[data-testid=condition-followers]").get_attribute("data-met") == "no"
        assert page.locator("[data-testid=condition-age]").get_attribute("data-met") == "yes"
        no_sideways_scroll(page)
        screenshot(page, f"ticketing-seller-{width}")

        page.goto(f"{server.url}/spaces/{space.pk}/tickets/")
        page.wait_for_selector("[data-testid=not-eligible]")
        no_sideways_scroll(page)
        screenshot(page, f"ticketing-settings-ineligible-{width}")

        type(host).objects.filter(pk=host.pk).update(follower_count=1000)
        page.goto(f"{server.url}/spaces/{space.pk}/tickets/")
        page.fill("#id_price", "0.99")
        page.fill("#id_capacity", "40")
        page.click("[data-testid=save-tickets]")
        assert "between $1.00 and $999.00" in page.locator(".field-error").inner_text()
        screenshot(page, f"ticketing-settings-error-{width}")
        page.fill("#id_price", "12.50")
        page.click("[data-testid=save-tickets]")
        page.wait_for_url(f"{server.url}/spaces/{space.pk}/")

        for _ in range(3):
            hold = begin(space, UserFactory())
            services.stripe_event_handle(event=checkout_event(hold))
        page.goto(f"{server.url}/tickets/earnings/")
        assert page.locator("[data-testid=total-gross]").inner_text() == "$37.50"
        assert page.locator("[data-testid=keep-percent]").inner_text() == "97%"
        no_sideways_scroll(page)
        screenshot(page, f"ticketing-earnings-{width}")
    finally:
        browser.close()
