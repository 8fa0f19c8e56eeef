"""The foundation in a real browser: sign-up, a profile with htmx follow, and the home page."""

import pytest

from accounts.models import User
from tests.conftest import screenshot
from tests.factories import PASSWORD, UserFactory, make_users
from tests.test_browser_layout import assert_fits

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def test_follow_from_a_profile_updates_in_place(asgi_server, browser_context):
    fan = UserFactory(username="fan_one")
    star = UserFactory(username="star", display_name="Star Person", bio="I host things.")
    page = browser_context(server=asgi_server, user=fan, **DESKTOP).new_page()
    page.goto(asgi_server.url + "/u/star/")
    page.evaluate("window.__marker = 'same-document'")
    page.get_by_test_id("follow").click()
    page.get_by_test_id("unfollow").wait_for()
    assert page.get_by_test_id("follower-count").inner_text() == "1"
    # htmx swapped the fragment: the page was not reloaded.
    assert page.evaluate("window.__marker") == "same-document"
    star.refresh_from_db()
    assert star.follower_count == 1
    page.get_by_test_id("unfollow").click()
    page.get_by_test_id("follow").wait_for()
    assert page.get_by_test_id("follower-count").inner_text() == "0"
    assert page.evaluate("window.__marker") == "same-document"


def test_sign_up_in_the_browser(asgi_server, browser_context):
    page = browser_context(server=asgi_server, **PHONE).new_page()
    page.goto(asgi_server.url + "/accounts/signup/")
    screenshot(page, "signup-phone")
    page.fill("input[name=email]", "newperson@example.com")
    page.fill("input[name=username]", "newperson")
    page.fill("input[name=password1]", "a-long-passphrase-42")
    page.fill("input[name=password2]", "a-long-passphrase-42")
    page.click("main button[type=submit]")
    page.wait_for_url("**/accounts/confirm-email/**")
    assert "verify" in page.content().lower() or "confirm" in page.content().lower()
    assert User.objects.filter(username="newperson").exists()


def test_sign_up_errors_are_shown(asgi_server, browser_context):
    UserFactory(username="taken")
    page = browser_context(server=asgi_server, **DESKTOP).new_page()
    page.goto(asgi_server.url + "/accounts/signup/")
    page.fill("input[name=email]", "x@example.com")
    page.fill("input[name=username]", "taken")
    page.fill("input[name=password1]", "a-long-passphrase-42")
    page.fill("input[name=password2]", "a-long-passphrase-42")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert "already" in page.content().lower()
    screenshot(page, "signup-error-desktop")


def test_a_password_mismatch_shows_in_red_under_the_second_password(asgi_server, browser_context):
    page = browser_context(server=asgi_server, **PHONE).new_page()
    page.goto(asgi_server.url + "/accounts/signup/")
    page.fill("input[name=email]", "x@example.com")
    page.fill("input[name=username]", "newbie")
    page.fill("input[name=password1]", "a-long-passphrase-42")
    page.fill("input[name=password2]", "a-long-passphrase-43")
    page.click("main button[type=submit]")
    error = page.locator("#id_password2_error")
    error.wait_for()
    second = page.locator("#id_password2").bounding_box()
    first = page.locator("#id_password1").bounding_box()
    assert error.bounding_box()["y"] > second["y"] > first["y"]  # below its own field, not between
    assert error.evaluate("el => getComputedStyle(el).color") != page.locator(".help").first.evaluate(
        "el => getComputedStyle(el).color"
    )
    assert_fits(page)
    screenshot(page, "signup-mismatch-phone")


def test_a_suspended_person_sees_why_and_how_to_appeal(asgi_server, browser_context):
    from allauth.account.models import EmailAddress

    from accounts.services import user_suspend

    user = UserFactory(username="gone")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    user_suspend(user=user, by=UserFactory(is_staff=True), reason="Repeated spam links in Spaces.")
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page = browser_context(server=asgi_server, **viewport).new_page()
        page.goto(asgi_server.url + "/accounts/login/")
        page.fill("input[name=login]", "gone")
        page.fill("input[name=password]", PASSWORD)
        page.click("main button[type=submit]")
        page.get_by_test_id("suspended").wait_for()
        assert "Repeated spam links" in page.get_by_test_id("suspension-reason").inner_text()
        assert page.get_by_test_id("appeal-link").get_attribute("href").startswith("mailto:")
        assert_fits(page)
        screenshot(page, f"suspended-{name}")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_screens_render(asgi_server, browser_context, viewport):
    """Screenshots for people to look at; the assertions keep them honest about what is on screen."""
    host = UserFactory(username="ana", display_name="Ana Ruiz", bio="Talks about open source and radio.")
    viewer = UserFactory(username="viewer", display_name="Viewer")
    for fan in make_users(12, prefix="f"):
        from accounts.services import follow_create

        follow_create(follower=fan, followee=host)
    name = "phone" if viewport is PHONE else "desktop"

    anon = browser_context(server=asgi_server, **viewport).new_page()
    anon.goto(asgi_server.url + "/")
    assert anon.get_by_role("link", name="Join Spaces").first.is_visible()
    screenshot(anon, f"home-anonymous-{name}")
    anon.goto(asgi_server.url + "/accounts/signup/")
    screenshot(anon, f"signup-{name}")

    page = browser_context(server=asgi_server, user=viewer, **viewport).new_page()
    page.goto(asgi_server.url + "/")
    assert "0 of 600 followers" in page.get_by_test_id("host-card").inner_text()
    screenshot(page, f"home-{name}")
    page.goto(asgi_server.url + "/u/ana/")
    assert page.get_by_role("heading", name="Ana Ruiz").is_visible()
    assert page.get_by_test_id("follower-count").inner_text() == "12"
    # Nothing may overflow the viewport sideways on a phone.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, f"profile-{name}")
