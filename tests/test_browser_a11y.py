"""Both colour themes and accessibility, in real Chromium: the pages people use most, at 390 and
1280 px, in the light and the dark theme, checked with axe-core (vendored under tests/vendor, used
only here) for serious and critical violations; the theme follows the system and the toggle
remembers a choice."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from accounts import services as account_services
from rooms import scheduling, services
from tests.conftest import screenshot
from tests.factories import UserFactory
from tests.test_ticketing import buy
from tests.test_ticketing_support import eligible_host, ticketed_space

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SERIOUS = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' '))}));
}"""
BACKGROUND = {"light": "rgb(247, 245, 251)", "dark": "rgb(15, 12, 23)"}  # --bg in each theme
VIEWPORTS = {"390": {"width": 390, "height": 844}, "1280": {"width": 1280, "height": 900}}


def axe_violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(SERIOUS)


@pytest.fixture
def site(transactional_db):
    """A host with a live Space (a ticketed one sold), a scheduled one, a follower with a ticket."""
    host = eligible_host(
        username="mara", display_name="Mara Nakamura", hosting_granted=True, bio="Radio nerd."
    )
    fan = UserFactory(username="fan", display_name="Fan Person")
    account_services.follow_create(follower=fan, followee=host)
    scheduled = scheduling.space_schedule(
        host=host,
        title="Friday night records",
        scheduled_for=timezone.now() + timedelta(days=2),
        topics=["vinyl"],
    )
    ticketed = ticketed_space(host=host, price_cents=500, capacity=20, title="Paid listening party")
    buy(ticketed, fan)
    live = services.space_create(host=host, title="Morning radio", topics=["radio"], speak_policy="everyone")
    return {"host": host, "fan": fan, "scheduled": scheduled, "ticketed": ticketed, "live": live}


def pages_for(site) -> list[tuple[str, object, str]]:
    """(name, who, path) of every page checked."""
    host, fan = site["host"], site["fan"]
    return [
        ("home", fan, "/"),
        ("space", fan, f"/spaces/{site['live'].pk}/"),
        ("space-host", host, f"/spaces/{site['live'].pk}/"),
        ("profile", fan, f"/u/{host.username}/"),
        ("profile-edit", fan, "/settings/profile/"),
        ("schedule", host, "/spaces/schedule/"),
        ("scheduled", fan, f"/spaces/{site['scheduled'].pk}/scheduled/"),
        ("ticket-space", fan, f"/spaces/{site['ticketed'].pk}/scheduled/"),
        ("ticket-seller", host, "/tickets/sell/"),
        ("ticket-settings", host, f"/spaces/{site['ticketed'].pk}/tickets/"),
        ("ticket-earnings", host, "/tickets/earnings/"),
    ]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_pages_have_no_serious_accessibility_violation_in_either_theme(
    asgi_server, browser_context, site, theme
):
    found = {}
    for width, viewport in VIEWPORTS.items():
        for name, who, path in pages_for(site):
            context = browser_context(server=asgi_server, user=who, color_scheme=theme, **viewport)
            page = context.new_page()
            response = page.goto(f"{asgi_server.url}{path}")
            assert response.status == 200, (name, response.status)
            if name.startswith("space"):
                page.wait_for_selector("#connection[data-status=open]")
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") == BACKGROUND[theme]
            violations = axe_violations(page)
            if violations:
                found[f"{name}-{width}"] = violations
            screenshot(page, f"theme-{theme}-{name}-{width}")
            context.close()
    assert not found, json.dumps(found, indent=1)


def test_the_theme_follows_the_system_and_the_toggle_remembers_a_choice(asgi_server, browser_context, site):
    context = browser_context(server=asgi_server, user=site["fan"], color_scheme="dark", **VIEWPORTS["390"])
    page = context.new_page()
    page.goto(f"{asgi_server.url}/")
    background = "getComputedStyle(document.body).backgroundColor"
    dark = page.evaluate(background)
    assert dark == BACKGROUND["dark"]
    assert page.evaluate("document.documentElement.dataset.theme") is None
    page.get_by_test_id("theme-toggle").click()
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    light = page.evaluate(background)
    assert light == BACKGROUND["light"]
    # The server sets it from the cookie on the next page, before any script runs.
    page.goto(f"{asgi_server.url}/u/{site['host'].username}/")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    assert page.evaluate(background) == light
    assert page.get_by_test_id("theme-toggle").get_attribute("aria-label") == "Switch to dark theme"
