"""Moderation in a real browser: the report modal, the feedback prompt and the moderators' queue,
photographed at phone and desktop widths; and a moderator ending a live Space from the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.groups import MODERATORS
from moderation import services
from moderation.models import Feedback, Report
from rooms import services as room_services
from tests.conftest import screenshot
from tests.factories import UserFactory
from tests.rooms_support import join, live_space, make_host

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = '<script>alert("x")</script>'
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}


def moderator():
    user = UserFactory(username="mod", is_staff=True)
    user.groups.add(Group.objects.get(name=MODERATORS))
    return user


def no_script_ran(page) -> None:
    assert page.evaluate("window.__xss === undefined")


@pytest.mark.parametrize("size", VIEWPORTS)
def test_report_modal_feedback_prompt_and_report_queue(asgi_server, browser_context, size):
    viewport = VIEWPORTS[size]
    host = make_host(username="hosty", display_name="Hosty McHost")
    troll = UserFactory(username="troll", display_name='<img src=x onerror="window.__xss=1">')
    space = live_space(host, title=XSS)
    listener = UserFactory(username="listener")
    join(space, listener)
    room_services.space_end(space=space, by=host)

    # A listener reports an account from the modal (opened over a page, as the Space page does).
    page = browser_context(server=asgi_server, user=listener, **viewport).new_page()
    page.goto(f"{asgi_server.url}/u/troll/")
    page.evaluate("url => htmx.ajax('GET', url, {target: 'body', swap: 'beforeend'})", "/u/troll/report/")
    page.get_by_test_id("report-modal").wait_for()
    page.get_by_label("Harassment or bullying").check()
    page.get_by_label("Anything else we should know? (optional)").fill("Kept shouting " + XSS)
    screenshot(page, f"moderation-report-modal-{size}")
    page.get_by_test_id("report-submit").click()
    page.get_by_text("Thanks for telling us").wait_for()
    no_script_ran(page)
    screenshot(page, f"moderation-report-sent-{size}")

    # The same listener rates the Space that just ended: one tap, then an optional comment.
    page.goto(f"{asgi_server.url}/spaces/{space.pk}/feedback/")
    page.get_by_test_id("feedback").wait_for()
    screenshot(page, f"moderation-feedback-{size}")
    page.get_by_test_id("rate-4").click()
    page.get_by_test_id("feedback-rating").wait_for()
    page.get_by_label("Tell us more (optional)").fill("Clear audio, " + XSS)
    page.get_by_test_id("feedback-comment-submit").click()
    page.locator(".feedback-comment").wait_for()
    no_script_ran(page)
    screenshot(page, f"moderation-feedback-thanks-{size}")
    assert Feedback.objects.get().rating == 4 and Feedback.objects.get().comment == "Clear audio, " + XSS

    # A moderator works the queue: sees it, resolves the report with a note.
    for i in range(3):
        services.report_create(reporter=UserFactory(), space=space, reason="spam", text=f"Report {i} {XSS}")
    mod = moderator()
    admin = browser_context(server=asgi_server, user=mod, **viewport).new_page()
    admin.goto(f"{asgi_server.url}/admin/moderation/report/")
    assert admin.get_by_test_id("count-open").inner_text() == "4"
    no_script_ran(admin)
    screenshot(admin, f"moderation-admin-queue-{size}")
    report = Report.objects.get(account=troll)
    admin.check(f"input[name=_selected_action][value='{report.pk}']")
    admin.select_option("select[name=action]", "resolve_reports")
    admin.click("button[name=index]")
    admin.fill("#id_note", "Warned the account")
    screenshot(admin, f"moderation-admin-note-{size}")
    admin.get_by_test_id("confirm-action").click()
    admin.get_by_test_id("count-open").wait_for()
    assert admin.get_by_test_id("count-open").inner_text() == "3"
    report.refresh_from_db()
    assert (report.status, report.moderator_note) == ("resolved", "Warned the account")


def test_a_moderator_ends_a_live_space_from_the_admin_and_the_listener_sees_it(asgi_server, browser_context):
    host = make_host(username="hosty", display_name="Hosty")
    listener = UserFactory(username="listener")
    space = live_space(host, title="Late night radio")
    live_space(title="Another live one")
    mod = moderator()

    ear = browser_context(server=asgi_server, user=listener, **VIEWPORTS["phone"]).new_page()
    ear.goto(f"{asgi_server.url}/spaces/{space.pk}/")
    ear.wait_for_selector("#connection[data-status=open]")

    admin = browser_context(server=asgi_server, user=mod, **VIEWPORTS["desktop"]).new_page()
    admin.goto(f"{asgi_server.url}/admin/moderation/livespace/")
    admin.wait_for_selector(f"input[name=_selected_action][value='{space.pk}']")
    screenshot(admin, "moderation-admin-spaces-desktop")
    admin.check(f"input[name=_selected_action][value='{space.pk}']")
    admin.select_option("select[name=action]", "end_spaces")
    admin.click("button[name=index]")
    admin.fill("#id_note", "Threats against a speaker")
    admin.get_by_test_id("confirm-action").click()
    admin.wait_for_selector("ul.messagelist")

    ear.wait_for_selector("[data-testid=ended]", timeout=2000)
    assert "has ended" in ear.get_by_test_id("ended").inner_text().lower()
    screenshot(ear, "moderation-space-ended-by-moderator-phone")
    space.refresh_from_db()
    assert (space.state, space.ended_reason) == ("ended", "moderator")
