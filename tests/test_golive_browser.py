"""Go-live in real Chromium: a follower's open home page hears the host start and end, within 2 s.

The whole path is real: the host starts from the browser (daphne), a real Celery worker runs the
fan-out, the notice reaches the follower's bell socket (pushed through Redis, or found by the
embedded default's once-a-second look), and the live bar moves over /ws/home/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from accounts.services import follow_create
from rooms.models import Space
from tests.conftest import ARTIFACTS, ROOT, child_database_env, screenshot, stop_process
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
WITHIN = 2.0  # seconds


@pytest.fixture
def celery_worker(asgi_server):
    """A real `celery worker` (the Procfile's command, one process) on the test database."""
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "golive-worker.log"
    env = {**os.environ, "DEBUG": "1", "SITE_URL": asgi_server.url, **child_database_env()}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "spaces_project",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    # With the filesystem broker of the embedded default the worker prints no "ready." line: it is
    # ready once it has run a first task (for no Space: it does nothing), which also warms it up.
    from rooms.tasks import golive_fanout

    try:
        golive_fanout.delay(0)
        while b"succeeded" not in log.read_bytes():
            assert proc.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
        yield proc
    finally:
        stop_process(proc)


def open_home(browser_context, server, user, viewport):
    page = browser_context(server=server, user=user, **viewport).new_page()
    page.goto(f"{server.url}/")
    page.wait_for_selector("[data-home-live-now][data-live=on]")
    page.wait_for_selector("[data-notifications-unread][data-connected]", state="attached")
    return page


def test_a_followers_open_home_page_hears_the_host_go_live_and_end(
    asgi_server, browser_context, celery_worker
):
    host = UserFactory(username="ana", display_name="Ana", hosting_granted=True)
    fans = [UserFactory(), UserFactory()]
    for fan in fans:
        follow_create(follower=fan, followee=host)
    homes = [
        open_home(browser_context, asgi_server, fans[0], DESKTOP),
        open_home(browser_context, asgi_server, fans[1], PHONE),
    ]
    for home in homes:
        assert home.locator("[data-testid=live-bar]").count() == 0

    host_page = browser_context(server=asgi_server, user=host, **DESKTOP).new_page()
    host_page.goto(f"{asgi_server.url}/spaces/new/")
    host_page.get_by_label("Title").fill("Late night radio")
    started = time.monotonic()
    host_page.get_by_test_id("start").click()

    for home in homes:
        left = max(0.1, WITHIN - (time.monotonic() - started))
        home.wait_for_selector(
            "[data-testid=live-bar] a[title='Ana is live: Late night radio']", timeout=left * 1000
        )
        left = max(0.1, WITHIN - (time.monotonic() - started))
        home.wait_for_selector(".toast:has-text('Ana is live: Late night radio')", timeout=left * 1000)
    assert time.monotonic() - started <= WITHIN
    space = Space.objects.get(title="Late night radio")
    for home in homes:
        # The purple ring, and one tap on the notice joins.
        assert home.locator("[data-testid=live-bar] .ring-live").count() == 1
        assert home.locator(".toast a").first.get_attribute("href") == f"{asgi_server.url}/spaces/{space.pk}/"
        assert "Late night radio" in home.get_by_test_id("discover").inner_text()
        home.wait_for_timeout(400)  # the toast's entrance animation has run
        box, screen = home.locator(".toast").first.bounding_box(), home.viewport_size
        assert box["y"] >= 0 and box["y"] + box["height"] <= screen["height"], (box, screen)
    screenshot(homes[0], "golive-home-desktop")
    screenshot(homes[1], "golive-home-phone")

    host_page.wait_for_selector("#connection[data-status=open]")
    host_page.once("dialog", lambda dialog: dialog.accept())
    ended = time.monotonic()
    host_page.get_by_test_id("end").click()
    for home in homes:
        left = max(0.1, WITHIN - (time.monotonic() - ended))
        home.wait_for_selector("[data-testid=live-bar]", state="detached", timeout=left * 1000)
    assert time.monotonic() - ended <= WITHIN
    for home in homes:
        assert home.locator("[data-testid=discover]").count() == 0  # "No Spaces are live right now."
    screenshot(homes[1], "golive-home-ended-phone")

    # The notice stays in the list; the toast's link took the follower to the Space.
    homes[0].goto(f"{asgi_server.url}/notifications/")
    assert "Ana is live: Late night radio" in homes[0].get_by_test_id("inbox").inner_text()


def test_desktop_notifications_are_asked_for_only_from_the_visible_control(asgi_server, browser_context):
    fan = UserFactory()
    for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        context = browser_context(server=asgi_server, user=fan, **viewport)
        page = context.new_page()
        page.add_init_script(
            "window.__asked = 0; const ask = Notification.requestPermission.bind(Notification);"
            "Notification.requestPermission = (...a) => { window.__asked += 1; return ask(...a); };"
        )
        page.goto(f"{asgi_server.url}/")
        page.wait_for_selector("[data-notifications-unread][data-connected]", state="attached")
        assert page.evaluate("window.__asked") == 0  # never on page load
        page.goto(f"{asgi_server.url}/notifications/")
        control = page.get_by_test_id("desktop-notifications")
        control.wait_for()
        assert control.inner_text() == "Turn on desktop notifications"
        assert page.evaluate("window.__asked") == 0
        screenshot(page, f"golive-inbox-{name}")
        context.grant_permissions(["notifications"], origin=asgi_server.url)
        control.click()
        page.wait_for_function("window.__asked === 1")
        page.wait_for_selector("[data-testid=desktop-notifications]:has-text('Desktop notifications are on')")


def test_the_profile_switch_for_go_live_emails(asgi_server, browser_context):
    host = UserFactory(username="ana", display_name="Ana", hosting_granted=True)
    fan = UserFactory()
    follow_create(follower=fan, followee=host)
    for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = browser_context(server=asgi_server, user=fan, **viewport).new_page()
        page.goto(f"{asgi_server.url}/u/ana/")
        switch = page.get_by_test_id("live-email")
        expected = "false" if name == "desktop" else "true"
        assert switch.get_attribute("aria-checked") == expected
        switch.click()
        flipped = "true" if expected == "false" else "false"
        page.wait_for_selector(f"[data-testid=live-email][aria-checked={flipped}]")
        screenshot(page, f"golive-profile-{name}")
    fan.following_set.get(followee=host).refresh_from_db()
    assert fan.following_set.get(followee=host).email_on_live is False  # on, then off again
