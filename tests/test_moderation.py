"""Moderation: reports, host blocks, feedback, the audit log, and what the Moderators group may do."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.groups import MODERATOR_PERMISSIONS, MODERATORS
from accounts.ratelimit import RateLimited
from moderation import services
from moderation.models import AuditLog, Feedback, HostBlock, Report
from rooms.models import Participant, Space
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

XSS = '<script>alert("x")</script>'


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def live_space(host=None, **kwargs) -> Space:
    host = host or UserFactory(hosting_granted=True)
    space = Space.objects.create(
        host=host,
        title=kwargs.pop("title", "Morning show"),
        state=Space.State.LIVE,
        started_at=timezone.now(),
        **kwargs,
    )
    Participant.objects.create(space=space, user=host, role=Participant.Role.HOST)
    return space


def listener_in(space: Space, user=None):
    user = user or UserFactory()
    Participant.objects.create(space=space, user=user, role=Participant.Role.LISTENER)
    return user


def moderator():
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=MODERATORS))
    return user


# --- reports ----------------------------------------------------------------------


def test_anyone_signed_in_can_report_a_space_or_an_account():
    reporter, troll = UserFactory(), UserFactory()
    space = live_space()
    on_space = services.report_create(reporter=reporter, space=space, reason="spam", text="Selling stuff")
    on_account = services.report_create(reporter=reporter, account=troll, reason="harassment")
    assert (on_space.status, on_space.target_type) == ("open", "space")
    assert (on_account.status, on_account.target_type) == ("open", "account")


def test_one_open_report_per_reporter_and_target():
    reporter, troll = UserFactory(), UserFactory()
    services.report_create(reporter=reporter, account=troll, reason="spam")
    with pytest.raises(services.DuplicateReport, match="already reported"):
        services.report_create(reporter=reporter, account=troll, reason="hate")
    # Someone else may report the same account, and the same reporter may report another.
    services.report_create(reporter=UserFactory(), account=troll, reason="spam")
    services.report_create(reporter=reporter, account=UserFactory(), reason="spam")
    assert Report.objects.count() == 3


def test_the_database_refuses_a_second_open_report_even_past_the_service():
    reporter, troll = UserFactory(), UserFactory()
    Report.objects.create(reporter=reporter, account=troll, reason="spam")
    with pytest.raises(IntegrityError), transaction.atomic():
        Report.objects.create(reporter=reporter, account=troll, reason="spam")


def test_after_a_report_is_closed_the_same_person_can_report_again():
    reporter, troll = UserFactory(), UserFactory()
    report = services.report_create(reporter=reporter, account=troll, reason="spam")
    services.report_dismiss(report=report, by=moderator(), note="Not spam")
    services.report_create(reporter=reporter, account=troll, reason="spam")
    assert Report.objects.filter(reporter=reporter, account=troll).count() == 2


def test_report_needs_exactly_one_target_and_a_listed_reason():
    reporter = UserFactory()
    with pytest.raises(ValidationError, match="either a Space or an account"):
        services.report_create(reporter=reporter, reason="spam")
    with pytest.raises(ValidationError, match="either a Space or an account"):
        services.report_create(reporter=reporter, reason="spam", space=live_space(), account=UserFactory())
    with pytest.raises(ValidationError, match="reason"):
        services.report_create(reporter=reporter, reason="vibes", account=UserFactory())
    with pytest.raises(ValidationError, match="yourself"):
        services.report_create(reporter=reporter, reason="spam", account=reporter)


def test_report_text_limit_is_500_characters():
    reporter = UserFactory()
    services.report_create(reporter=reporter, account=UserFactory(), reason="other", text="x" * 500)
    with pytest.raises(ValidationError, match="500"):
        services.report_create(reporter=reporter, account=UserFactory(), reason="other", text="x" * 501)


def test_reports_are_rate_limited(settings):
    settings.SPACES_REPORTS_PER_WINDOW = 3
    reporter = UserFactory()
    for _ in range(3):
        services.report_create(reporter=reporter, account=UserFactory(), reason="spam")
    with pytest.raises(RateLimited, match="wait a few minutes"):
        services.report_create(reporter=reporter, account=UserFactory(), reason="spam")
    assert Report.objects.count() == 3
    # The limit is per person.
    services.report_create(reporter=UserFactory(), account=UserFactory(), reason="spam")


def test_resolving_and_dismissing_write_the_outcome_the_audit_row_and_tell_the_reporter():
    mod = moderator()
    reporter = UserFactory()
    first = services.report_create(reporter=reporter, account=UserFactory(), reason="spam")
    second = services.report_create(reporter=reporter, space=live_space(), reason="hate")
    services.report_resolve(report=first, by=mod, note="Warned them")
    services.report_dismiss(report=second, by=mod, note="Nothing there")
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.status, first.moderator_note, first.handled_by) == ("resolved", "Warned them", mod)
    assert (second.status, second.moderator_note) == ("dismissed", "Nothing there")
    rows = list(
        AuditLog.objects.order_by("id").values_list("action", "target_type", "target_id", "note", "actor")
    )
    assert rows == [
        ("report_resolve", "report", first.pk, "Warned them", mod.pk),
        ("report_dismiss", "report", second.pk, "Nothing there", mod.pk),
    ]
    from notifications.models import Delivery

    told = Delivery.objects.filter(recipient=reporter, kind="report_outcome").order_by("id")
    assert told.count() == 2
    assert all(d.send_email is False for d in told)
    assert "action was taken" in told[0].body and "no rule was broken" in told[1].body
    # The moderator's private note never reaches the reporter.
    assert not any("Warned" in d.body or "Warned" in d.title for d in told)


def test_a_closed_report_cannot_be_closed_again():
    mod = moderator()
    report = services.report_create(reporter=UserFactory(), account=UserFactory(), reason="spam")
    services.report_resolve(report=report, by=mod)
    with pytest.raises(ValidationError, match="already resolved"):
        services.report_dismiss(report=report, by=mod)
    assert AuditLog.objects.count() == 1


def test_only_moderators_act_on_reports():
    report = services.report_create(reporter=UserFactory(), account=UserFactory(), reason="spam")
    for outsider in (UserFactory(), UserFactory(is_staff=True)):  # staff without the group is not enough
        with pytest.raises(PermissionDenied):
            services.report_resolve(report=report, by=outsider)
    report.refresh_from_db()
    assert report.status == "open"
    assert AuditLog.objects.count() == 0


# --- host blocks -------------------------------------------------------------------


def test_a_host_blocks_and_unblocks_with_an_audit_row_each():
    host, pest = UserFactory(), UserFactory()
    services.host_block(host=host, user=pest)
    services.host_block(host=host, user=pest)  # again: nothing new
    assert HostBlock.objects.filter(host=host, blocked=pest).count() == 1
    assert services.host_unblock(host=host, user=pest) is True
    assert services.host_unblock(host=host, user=pest) is False
    assert list(AuditLog.objects.order_by("id").values_list("action", "actor", "target_id")) == [
        ("host_block", host.pk, pest.pk),
        ("host_unblock", host.pk, pest.pk),
    ]


def test_a_host_cannot_block_themselves():
    host = UserFactory()
    with pytest.raises(ValidationError, match="yourself"):
        services.host_block(host=host, user=host)


# --- feedback ----------------------------------------------------------------------


def test_feedback_is_one_row_per_person_per_space_and_the_second_answer_replaces_the_first():
    space = live_space()
    listener = listener_in(space)
    services.feedback_submit(space=space, user=listener, rating=2)
    services.feedback_submit(space=space, user=listener, rating=4, comment="Crackly at first")
    assert list(Feedback.objects.values_list("rating", "comment")) == [(4, "Crackly at first")]


@pytest.mark.parametrize("rating", [0, 6, "5"])
def test_feedback_rating_is_an_integer_from_1_to_5(rating):
    space = live_space()
    with pytest.raises(ValidationError, match="1 to 5"):
        services.feedback_submit(space=space, user=listener_in(space), rating=rating)


def test_only_people_who_were_in_the_space_rate_it_and_not_its_host():
    space = live_space()
    with pytest.raises(PermissionDenied, match="were in this Space"):
        services.feedback_submit(space=space, user=UserFactory(), rating=5)
    with pytest.raises(PermissionDenied, match="Hosts"):
        services.feedback_submit(space=space, user=space.host, rating=5)
    assert Feedback.objects.count() == 0


def test_feedback_comment_limit_is_500_characters():
    space = live_space()
    listener = listener_in(space)
    services.feedback_submit(space=space, user=listener, rating=3, comment="y" * 500)
    with pytest.raises(ValidationError, match="500"):
        services.feedback_submit(space=space, user=listener, rating=3, comment="y" * 501)


# --- pages ---------------------------------------------------------------------------


def test_report_page_files_a_report_and_escapes_the_space_title(client):
    space = live_space(title=XSS)
    client.force_login(UserFactory())
    page = client.get(reverse("moderation:report_space", args=[space.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert XSS not in html and "&lt;script&gt;" in html
    done = client.post(reverse("moderation:report_space", args=[space.pk]), {"reason": "spam", "text": XSS})
    assert done.status_code == 200
    assert "Thanks for telling us" in done.content.decode()
    assert Report.objects.get().text == XSS  # stored as typed, escaped when shown


def test_report_form_refuses_long_text_and_missing_reason(client):
    account = UserFactory()
    client.force_login(UserFactory())
    url = reverse("moderation:report_account", args=[account.username])
    assert client.post(url, {"reason": "spam", "text": "z" * 501}).status_code == 400
    assert client.post(url, {"text": "hello"}).status_code == 400
    assert Report.objects.count() == 0


def test_report_form_over_htmx_is_a_modal_fragment(client):
    account = UserFactory()
    client.force_login(UserFactory())
    url = reverse("moderation:report_account", args=[account.username])
    html = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and "<dialog" in html
    html = client.post(url, {"reason": "spam"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<dialog" not in html and "Thanks for telling us" in html
    again = client.post(url, {"reason": "spam"}, HTTP_HX_REQUEST="true").content.decode()
    assert "already reported" in again


def test_report_pages_need_sign_in_and_refuse_reporting_yourself(client):
    me = UserFactory()
    url = reverse("moderation:report_account", args=[me.username])
    assert client.get(url).status_code == 302
    client.force_login(me)
    assert client.get(url).status_code == 403


def test_rate_limited_report_says_so(client, settings):
    settings.SPACES_REPORTS_PER_WINDOW = 1
    client.force_login(UserFactory())
    first, second = UserFactory(), UserFactory()
    client.post(reverse("moderation:report_account", args=[first.username]), {"reason": "spam"})
    refused = client.post(reverse("moderation:report_account", args=[second.username]), {"reason": "spam"})
    assert refused.status_code == 429
    assert "wait a few minutes" in refused.content.decode()


def test_my_reports_page_shows_status_and_escapes(client):
    reporter = UserFactory()
    space = live_space(title=XSS)
    services.report_create(reporter=reporter, space=space, reason="spam")
    client.force_login(reporter)
    html = client.get(reverse("moderation:my_reports")).content.decode()
    assert XSS not in html and "&lt;script&gt;" in html and "Open" in html


def test_feedback_prompt_one_tap_then_optional_comment(client):
    space = live_space(title=XSS)
    listener = listener_in(space)
    client.force_login(listener)
    url = reverse("moderation:feedback", args=[space.pk])
    prompt = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "How was the audio?" in prompt and "<html" not in prompt
    assert XSS not in prompt
    rated = client.post(url, {"rating": "4"}, HTTP_HX_REQUEST="true").content.decode()
    assert re.search(r'data-testid="feedback-rating">4<', rated)
    assert 'name="comment"' in rated
    commented = client.post(url, {"rating": "4", "comment": XSS}, HTTP_HX_REQUEST="true").content.decode()
    assert XSS not in commented and "&lt;script&gt;" in commented
    assert Feedback.objects.get().comment == XSS


def test_feedback_refuses_outsiders_and_bad_ratings(client):
    space = live_space()
    client.force_login(UserFactory())
    url = reverse("moderation:feedback", args=[space.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"rating": "5"}).status_code == 403
    client.force_login(space.host)
    assert "Hosts don" in client.get(url).content.decode()
    client.force_login(listener_in(space))
    assert client.post(url, {"rating": "9"}).status_code == 400
    assert client.post(url, {"rating": "3", "comment": "c" * 501}).status_code == 400
    assert Feedback.objects.count() == 0


def test_block_button_blocks_and_unblocks_over_htmx(client):
    host, pest = UserFactory(), UserFactory()
    client.force_login(host)
    button = client.get(reverse("moderation:block", args=[pest.username])).content.decode()
    assert 'data-testid="block"' in button
    html = client.post(
        reverse("moderation:block", args=[pest.username]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'data-testid="unblock"' in html
    assert HostBlock.objects.filter(host=host, blocked=pest).exists()
    listing = client.get(reverse("moderation:blocks")).content.decode()
    assert pest.username in listing
    html = client.post(
        reverse("moderation:unblock", args=[pest.username]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'data-testid="block"' in html
    assert not HostBlock.objects.exists()


@pytest.mark.parametrize(
    "target", ["https://evil.example/x", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]
)
def test_block_and_unblock_never_redirect_off_site(client, target):
    host, pest = UserFactory(), UserFactory()
    client.force_login(host)
    for view in ("moderation:block", "moderation:unblock"):
        response = client.post(reverse(view, args=[pest.username]), {"next": target})
        assert response.status_code == 302
        assert response["Location"] == reverse("moderation:blocks")


def test_block_goes_back_to_a_page_on_this_site(client):
    host, pest = UserFactory(), UserFactory()
    client.force_login(host)
    back = reverse("profile", args=[pest.username])
    response = client.post(reverse("moderation:block", args=[pest.username]), {"next": back})
    assert response["Location"] == back


def test_block_needs_post_and_sign_in(client):
    pest = UserFactory()
    assert client.post(reverse("moderation:block", args=[pest.username])).status_code == 302
    client.force_login(UserFactory())
    assert client.delete(reverse("moderation:block", args=[pest.username])).status_code == 405
    assert not HostBlock.objects.exists()


# --- the moderators' admin ---------------------------------------------------------------


def test_moderators_group_has_exactly_the_listed_permissions_and_no_auth_rights():
    group = Group.objects.get(name=MODERATORS)
    granted = {
        f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")
    }
    assert granted == set(MODERATOR_PERMISSIONS)
    assert not any(p.startswith("auth.") for p in granted)
    assert not any(".delete_" in p or ".add_" in p for p in granted)
    assert "moderation.change_auditlog" not in granted


@pytest.mark.parametrize(
    "url",
    [
        "admin:moderation_report_changelist",
        "admin:moderation_auditlog_changelist",
        "admin:moderation_feedback_changelist",
        "admin:moderation_spacerating_changelist",
        "admin:moderation_hostrating_changelist",
        "admin:moderation_hostblock_changelist",
        "admin:moderation_livespace_changelist",
        "admin:accounts_user_changelist",
    ],
)
def test_moderators_see_the_pages_they_need(client, url):
    client.force_login(moderator())
    assert client.get(reverse(url)).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "admin:auth_group_changelist",
        "admin:auth_group_add",
        "admin:accounts_user_add",
        "admin:moderation_report_add",
        "admin:moderation_auditlog_add",
    ],
)
def test_moderators_are_refused_groups_permissions_and_adding(client, url):
    client.force_login(moderator())
    assert client.get(reverse(url)).status_code == 403


def test_moderators_cannot_open_or_change_a_superuser(client):
    boss = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(moderator())
    change = reverse("admin:accounts_user_change", args=[boss.pk])
    page = client.get(change)
    assert page.status_code == 200  # view permission shows it…
    assert 'name="username"' not in page.content.decode()  # …read-only
    client.post(change, {"username": "pwned", "is_superuser": ""})
    boss.refresh_from_db()
    assert (boss.username, boss.is_superuser) != ("pwned", False)
    assert (
        client.post(reverse("admin:accounts_user_delete", args=[boss.pk]), {"post": "yes"}).status_code == 403
    )


def test_moderators_cannot_give_themselves_privileges(client):
    mod = moderator()
    client.force_login(mod)
    page = client.get(reverse("admin:accounts_user_change", args=[mod.pk])).content.decode()
    for field in ("is_superuser", "groups", "user_permissions", "is_staff"):
        assert f'name="{field}"' not in page


def test_plain_users_and_non_group_staff_are_refused_the_moderation_admin(client):
    url = reverse("admin:moderation_report_changelist")
    client.force_login(UserFactory())
    assert client.get(url).status_code == 302  # to the admin login
    client.force_login(UserFactory(is_staff=True))
    assert client.get(url).status_code == 403


def test_report_queue_shows_counts_open_first_and_escapes_user_text(client, django_assert_max_num_queries):
    reporter_pool = [UserFactory() for _ in range(12)]
    troll = UserFactory(bio=XSS)
    space = live_space(title=XSS)
    for reporter in reporter_pool[:8]:
        services.report_create(reporter=reporter, account=troll, reason="spam", text=XSS)
    for reporter in reporter_pool[8:]:
        services.report_create(reporter=reporter, space=space, reason="hate")
    mod = moderator()
    services.report_dismiss(report=Report.objects.filter(space=space).first(), by=mod)
    client.force_login(mod)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("admin:moderation_report_changelist"))
    html = page.content.decode()
    assert XSS not in html and "&lt;script&gt;" in html
    assert re.search(r'data-testid="count-open">11<', html)
    assert len(page.context["cl"].result_list) == 11  # the queue opens on open reports
    all_page = client.get(reverse("admin:moderation_report_changelist") + "?status=all")
    everything = list(all_page.context["cl"].result_list)
    assert len(everything) == 12
    assert [r.status for r in everything][-1] == "dismissed"  # open ones first…
    assert everything[0] == Report.objects.filter(status="open").earliest("created_at")  # …oldest first


def test_resolve_action_asks_for_a_note_then_resolves_and_audits(client):
    mod = moderator()
    reports = [
        services.report_create(reporter=UserFactory(), account=UserFactory(), reason="spam") for _ in range(2)
    ]
    client.force_login(mod)
    url = reverse("admin:moderation_report_changelist")
    ids = [r.pk for r in reports]
    ask = client.post(url, {"action": "resolve_reports", "_selected_action": ids})
    assert ask.status_code == 200 and 'name="note"' in ask.content.decode()
    assert Report.objects.filter(status="open").count() == 2
    client.post(
        url, {"action": "resolve_reports", "_selected_action": ids, "note_confirmed": "yes", "note": XSS}
    )
    assert Report.objects.filter(status="resolved").count() == 2
    assert AuditLog.objects.filter(action="report_resolve", actor=mod, note=XSS).count() == 2
    audit = client.get(reverse("admin:moderation_auditlog_changelist")).content.decode()
    assert XSS not in audit


def test_dismiss_action_from_the_admin(client):
    mod = moderator()
    report = services.report_create(reporter=UserFactory(), space=live_space(), reason="other")
    client.force_login(mod)
    client.post(
        reverse("admin:moderation_report_changelist"),
        {"action": "dismiss_reports", "_selected_action": [report.pk], "note_confirmed": "yes", "note": "ok"},
    )
    report.refresh_from_db()
    assert report.status == "dismissed"


def test_audit_log_is_read_only_for_moderators_and_superusers_alike(client):
    services.host_block(host=UserFactory(), user=UserFactory())
    row = AuditLog.objects.get()
    for who in (moderator(), UserFactory(is_staff=True, is_superuser=True)):
        client.force_login(who)
        changelist = client.get(reverse("admin:moderation_auditlog_changelist"))
        assert changelist.status_code == 200
        assert "delete_selected" not in changelist.content.decode()
        assert (
            client.post(
                reverse("admin:moderation_auditlog_delete", args=[row.pk]), {"post": "yes"}
            ).status_code
            == 403
        )
        client.post(
            reverse("admin:moderation_auditlog_changelist"),
            {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"},
        )
        change = client.get(reverse("admin:moderation_auditlog_change", args=[row.pk])).content.decode()
        assert 'name="note"' not in change
    assert AuditLog.objects.filter(pk=row.pk).exists()


def test_feedback_averages_per_space_and_per_host(client):
    host = UserFactory(username="hosty")
    first, second = live_space(host, title=XSS), live_space(host, title="Second")
    for space, ratings in ((first, [5, 4]), (second, [1])):
        for rating in ratings:
            services.feedback_submit(space=space, user=listener_in(space), rating=rating)
    client.force_login(moderator())
    per_space = client.get(reverse("admin:moderation_spacerating_changelist"))
    rows = {s.title: (round(s.avg_rating, 2), s.n_ratings) for s in per_space.context["cl"].result_list}
    assert rows == {XSS: (4.5, 2), "Second": (1.0, 1)}
    assert XSS not in per_space.content.decode()
    per_host = client.get(reverse("admin:moderation_hostrating_changelist"))
    (row,) = per_host.context["cl"].result_list
    assert (row.username, round(row.avg_rating, 2), row.n_ratings, row.n_spaces) == ("hosty", 3.33, 3, 2)


def test_account_names_are_escaped_on_the_report_form_and_the_blocked_list(
    client, django_assert_max_num_queries
):
    host = UserFactory()
    pests = [UserFactory(display_name=XSS, bio=XSS) for _ in range(15)]
    for pest in pests:
        services.host_block(host=host, user=pest)
    client.force_login(host)
    html = client.get(reverse("moderation:report_account", args=[pests[0].username])).content.decode()
    assert XSS not in html and "&lt;script&gt;" in html
    with django_assert_max_num_queries(6):
        listing = client.get(reverse("moderation:blocks"))
    html = listing.content.decode()
    assert XSS not in html and html.count('data-testid="unblock"') == 15


def test_my_reports_page_query_count_does_not_grow(client, django_assert_max_num_queries, settings):
    settings.SPACES_REPORTS_PER_WINDOW = 100
    reporter = UserFactory()
    for i in range(20):
        services.report_create(reporter=reporter, space=live_space(title=f"Space {i}"), reason="spam")
        services.report_create(reporter=reporter, account=UserFactory(), reason="spam")
    client.force_login(reporter)
    with django_assert_max_num_queries(5):
        page = client.get(reverse("moderation:my_reports"))
    assert page.content.decode().count('data-testid="my-report"') == 40


def test_the_moderator_command_makes_staff_in_the_group_and_undoes_it():
    from django.core.management import call_command

    user = UserFactory()
    call_command("moderator", "add", user.username)
    user.refresh_from_db()
    assert user.is_staff and not user.is_superuser
    assert user.has_perm("moderation.change_report") and user.has_perm("rooms.end_space")
    call_command("moderator", "remove", user.username)
    user.refresh_from_db()
    assert not user.is_staff and not user.groups.exists()


def test_moderators_see_user_text_escaped_in_the_user_admin(client):
    person = UserFactory(display_name=XSS, bio=XSS)
    client.force_login(moderator())
    for url in (
        reverse("admin:accounts_user_changelist"),
        reverse("admin:accounts_user_change", args=[person.pk]),
    ):
        html = client.get(url).content.decode()
        assert XSS not in html and "&lt;script&gt;" in html
