"""Layout on a phone (390 px) and a desktop (1280 px): nothing wider than the viewport, every control
within reach, in both colour themes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services as account_services
from rooms import scheduling, services
from rooms.protocol import REACTIONS
from tests.conftest import screenshot
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

# Every element whose right edge passes the viewport (ignoring what a scrolling parent clips).
WIDER_THAN_VIEWPORT = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    let clipped = false;
    for (let p = el.parentElement; p; p = p.parentElement) {
      const style = getComputedStyle(p);
      const scrolls = ['auto', 'scroll', 'hidden', 'clip'].includes(style.overflowX);
      if (scrolls && p !== document.body) { clipped = true; break; }
    }
    if (clipped) continue;
    if (box.right > width + 0.5 || box.left < -0.5) {
      out.push(`${el.tagName}.${el.className} ${Math.round(box.left)}..${Math.round(box.right)}`);
    }
  }
  return {width, scrollWidth: document.documentElement.scrollWidth, out};
}"""


def assert_fits(page):
    result = page.evaluate(WIDER_THAN_VIEWPORT)
    assert result["scrollWidth"] <= result["width"], result
    assert result["out"] == [], result


LONG_TITLE = "A very long title about the history of community radio and its people"  # 70 characters


def test_home_with_a_long_upcoming_title_fits_a_phone(asgi_server, browser_context):
    host = UserFactory(username="mara", display_name="Mara Nakamura-Oyelaran", hosting_granted=True)
    viewer = UserFactory(username="viewer")
    account_services.follow_create(follower=viewer, followee=host)
    scheduling.space_schedule(
        host=host,
        title="Supercalifragilisticexpialidocious-community-radio-stations-history",
        scheduled_for=timezone.now() + timedelta(days=1),
    )
    scheduling.space_schedule(host=host, title=LONG_TITLE, scheduled_for=timezone.now() + timedelta(days=2))
    services.space_create(host=host, title="On air", speak_policy="everyone")
    for name, viewport in (("390", PHONE), ("1280", DESKTOP)):
        page = browser_context(server=asgi_server, user=viewer, **viewport).new_page()
        page.goto(f"{asgi_server.url}/")
        page.wait_for_selector("[data-testid=upcoming] .upcoming-row")
        assert_fits(page)
        # Names in the live bar and on stage wrap rather than being cut to "Mara N…".
        assert page.locator(".live-bar .name").first.evaluate("el => el.scrollWidth <= el.clientWidth")
        title = page.locator(".upcoming-row strong").last
        assert title.evaluate("el => el.scrollWidth <= el.clientWidth")  # wrapped, not cut
        screenshot(page, f"home-upcoming-{name}")


@pytest.mark.parametrize("role", ["host", "speaker"])
def test_the_reaction_picker_opens_inside_a_phone_screen(asgi_server, browser_context, role):
    host = UserFactory(username="hostess", display_name="Ana Host", hosting_granted=True)
    speaker = UserFactory(username="sam", display_name="Sam Speaker")
    space = services.space_create(
        host=host, title="Morning show", speak_policy="everyone", captions_enabled=False
    )
    who = host if role == "host" else speaker
    page = browser_context(server=asgi_server, user=who, **PHONE).new_page()
    page.goto(f"{asgi_server.url}/spaces/{space.pk}/")
    page.wait_for_selector("#connection[data-status=open]")
    if role == "speaker":
        host_page = browser_context(server=asgi_server, user=host, **DESKTOP).new_page()
        host_page.goto(f"{asgi_server.url}/spaces/{space.pk}/")
        host_page.wait_for_selector("#connection[data-status=open]")
        page.get_by_test_id("hand").click()
        host_page.get_by_test_id("accept-sam").click()
    page.get_by_test_id("mic").wait_for()
    page.get_by_test_id("react").click()
    picker = page.locator("#reaction-picker .picker")
    picker.wait_for()
    box = picker.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    for emoji in REACTIONS:
        button = page.locator(f"[data-emoji='{emoji}']").bounding_box()
        assert button["x"] >= 0 and button["x"] + button["width"] <= PHONE["width"], (emoji, button)
    assert_fits(page)
    screenshot(page, f"space-picker-{role}-390")
    page.click("[data-emoji='😂']")
    page.wait_for_selector(f"[data-testid=seat-{who.username}] .reaction-bubble.pop")


INSIDE = """(sel) => {
  const outer = document.querySelector(sel).getBoundingClientRect();
  const out = [];
  for (const el of document.querySelectorAll(sel + ' *')) {
    const b = el.getBoundingClientRect();
    if (b.width === 0 || b.height === 0) continue;
    if (b.left < outer.left - 0.5 || b.right > outer.right + 0.5) out.push(el.tagName + '.' + el.className);
  }
  return out;
}"""


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1280"])
def test_the_end_dialog_holds_the_rating_card_and_shows_the_host_a_summary(
    asgi_server, browser_context, viewport, theme
):
    host = UserFactory(username="hostess", display_name="Ana Host", hosting_granted=True)
    amy = UserFactory(username="amy", display_name="Amy Listener")
    space = services.space_create(host=host, title="Morning show", speak_policy="everyone")
    pages = {}
    for who in (host, amy):
        page = browser_context(server=asgi_server, user=who, color_scheme=theme, **viewport).new_page()
        page.goto(f"{asgi_server.url}/spaces/{space.pk}/")
        page.wait_for_selector("#connection[data-status=open]")
        pages[who.username] = page
    pages["amy"].get_by_test_id("react").click()
    pages["amy"].click("[data-emoji='😂']")
    pages["hostess"].wait_for_selector("[data-testid=listener-amy] .reaction-bubble.pop")
    pages["hostess"].once("dialog", lambda dialog: dialog.accept())
    pages["hostess"].get_by_test_id("end").click()

    listener = pages["amy"]
    listener.wait_for_selector("[data-testid=feedback] [data-testid=rate-5]")
    assert listener.evaluate(INSIDE, "[data-testid=ended]") == []
    assert_fits(listener)
    screenshot(listener, f"space-ended-rating-{theme}-{viewport['width']}")

    hosting = pages["hostess"]
    hosting.wait_for_selector("[data-testid=ended] [data-testid=summary]")
    assert "You ended this Space" in hosting.locator("#ended-reason").inner_text()
    assert hosting.locator("[data-testid=summary-total]").inner_text() == "1"
    assert hosting.locator("[data-testid=summary-reactions]").inner_text() == "1"
    assert hosting.evaluate(INSIDE, "[data-testid=ended]") == []
    assert_fits(hosting)
    screenshot(hosting, f"space-ended-summary-{theme}-{viewport['width']}")
    # What the host keeps: the stats page and the list of past Spaces.
    hosting.goto(f"{asgi_server.url}/spaces/hosted/")
    hosting.get_by_test_id("hosted-list").wait_for()
    hosting.click(".hosted-title")
    hosting.get_by_test_id("summary").wait_for()
    assert_fits(hosting)
    screenshot(hosting, f"space-stats-{theme}-{viewport['width']}")


def test_captions_give_the_host_one_control_and_an_empty_box_a_quiet_placeholder(
    asgi_server, browser_context
):
    host = UserFactory(username="hostess", display_name="Ana Host", hosting_granted=True)
    amy = UserFactory(username="amy", display_name="Amy Listener")
    space = services.space_create(
        host=host, title="Captioned", speak_policy="everyone", captions_enabled=True
    )
    pages = {}
    for who in (host, amy):
        page = browser_context(server=asgi_server, user=who, **PHONE).new_page()
        page.goto(f"{asgi_server.url}/spaces/{space.pk}/")
        page.wait_for_selector("#connection[data-status=open]")
        pages[who.username] = page
    hosting, listening = pages["hostess"], pages["amy"]
    hosting.wait_for_selector("#captions-host-toggle[aria-pressed=true]")
    assert hosting.locator("#captions-viewer-toggle").is_hidden()
    assert hosting.locator(".control-bar .ctl:visible", has_text="aption").count() == 1
    listening.wait_for_selector("#captions-viewer-toggle")
    assert listening.locator("#captions-host-toggle").is_hidden()
    for page in (hosting, listening):
        assert page.locator("#captions").is_visible()
        placeholder = page.evaluate(
            "getComputedStyle(document.querySelector('#caption-lines'), '::before').content"
        )
        assert "when someone speaks" in placeholder
    # Nobody on stage is counted as listening: the head says who is where.
    listening.wait_for_function("document.querySelector('#listener-count').textContent === '1'", timeout=2500)
    assert listening.locator("#stage-count").inner_text() == "1"
    assert_fits(hosting)
    screenshot(hosting, "captions-host-empty-390")


def test_share_without_a_clipboard_offers_the_link_in_a_sheet(asgi_server, browser_context):
    host = UserFactory(username="hostess", display_name="Ana Host", hosting_granted=True)
    amy = UserFactory(username="amy")
    space = services.space_create(host=host, title="Morning show", speak_policy="everyone")
    context = browser_context(server=asgi_server, user=amy, **PHONE)
    context.add_init_script(
        "Object.defineProperty(navigator, 'clipboard', {value: undefined});"
        "Object.defineProperty(navigator, 'share', {value: undefined});"
    )
    page = context.new_page()
    page.goto(f"{asgi_server.url}/spaces/{space.pk}/")
    page.wait_for_selector("#connection[data-status=open]")
    page.click("#share-button")
    field = page.get_by_test_id("share-url")
    field.wait_for()
    assert field.input_value() == f"{asgi_server.url}/spaces/{space.pk}/"
    assert page.locator("#live-toasts .toast", has_text="/spaces/").count() == 0  # no raw URL in a toast
    assert_fits(page)
    screenshot(page, "space-share-sheet-390")


def test_keyboard_reaches_the_controls_with_a_visible_ring_and_stage_changes_are_announced(
    asgi_server, browser_context
):
    host = UserFactory(username="hostess", display_name="Ana Host", hosting_granted=True)
    sam = UserFactory(username="sam", display_name="Sam Speaker")
    space = services.space_create(host=host, title="Morning show", speak_policy="everyone")
    pages = {}
    for who, viewport in ((host, DESKTOP), (sam, PHONE)):
        page = browser_context(server=asgi_server, user=who, **viewport).new_page()
        page.goto(f"{asgi_server.url}/spaces/{space.pk}/")
        page.wait_for_selector("#connection[data-status=open]")
        pages[who.username] = page
    page = pages["sam"]
    page.get_by_test_id("react").focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # into the picker
    focused = page.evaluate(
        "(() => { const el = document.activeElement; const s = getComputedStyle(el);"
        " return {emoji: el.dataset.emoji || null, outline: s.outlineStyle, width: s.outlineWidth}; })()"
    )
    assert focused["emoji"] and focused["outline"] == "solid" and focused["width"] != "0px", focused
    page.keyboard.press("Escape")
    page.get_by_test_id("hand").click()
    pages["hostess"].get_by_test_id("accept-sam").click()
    pages["hostess"].wait_for_function(
        "document.querySelector('#stage-announcer').textContent === 'Sam Speaker is on stage as a speaker.'"
    )
    assert pages["hostess"].get_by_test_id("stage-announcer").get_attribute("aria-live") == "polite"
    assert page.locator("#caption-lines").get_attribute("aria-live") == "polite"


def test_the_top_search_on_a_phone_is_a_button_that_opens_over_the_bar(asgi_server, browser_context):
    UserFactory(username="anaruiz", display_name="Ana Ruiz")
    page = browser_context(server=asgi_server, **PHONE).new_page()
    page.goto(f"{asgi_server.url}/")
    search = page.locator(".topsearch input")
    closed = search.bounding_box()
    assert closed["width"] < 48 and closed["height"] >= 36  # a round button within thumb reach
    search.click()
    page.keyboard.type("ana")
    opened = search.bounding_box()
    assert opened["width"] > 300 and opened["x"] + opened["width"] <= PHONE["width"], opened
    screenshot(page, "top-search-open-phone")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=ana")
    assert "Ana Ruiz" in page.locator("main").inner_text()
