"""Accounts: follows, hosting eligibility, profiles, admin and the demo seed."""

import datetime
import re

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse

from accounts import services
from accounts.groups import MODERATORS
from accounts.models import Follow, User
from tests.factories import PASSWORD, UserFactory, make_users

pytestmark = pytest.mark.django_db


def followers_for(user, n):
    for fan in make_users(n, prefix=f"fan{user.pk}_"):
        services.follow_create(follower=fan, followee=user)
    user.refresh_from_db()
    return user


# --- follows --------------------------------------------------------------


def test_follow_counts_both_sides():
    a, b = UserFactory(), UserFactory()
    assert services.follow_create(follower=a, followee=b) is True
    a.refresh_from_db(), b.refresh_from_db()
    assert (a.following_count, a.follower_count) == (1, 0)
    assert (b.following_count, b.follower_count) == (0, 1)


def test_repeating_a_follow_changes_nothing():
    a, b = UserFactory(), UserFactory()
    services.follow_create(follower=a, followee=b)
    assert services.follow_create(follower=a, followee=b) is False
    b.refresh_from_db()
    assert b.follower_count == 1
    assert Follow.objects.count() == 1


def test_cannot_follow_yourself():
    a = UserFactory()
    with pytest.raises(ValidationError, match="yourself"):
        services.follow_create(follower=a, followee=a)
    a.refresh_from_db()
    assert (a.follower_count, a.following_count) == (0, 0)


def test_unfollowing_someone_not_followed_changes_nothing():
    a, b = UserFactory(), UserFactory()
    assert services.follow_delete(follower=a, followee=b) is False
    b.refresh_from_db()
    assert b.follower_count == 0


def test_unfollow_decrements_once():
    a, b = UserFactory(), UserFactory()
    services.follow_create(follower=a, followee=b)
    assert services.follow_delete(follower=a, followee=b) is True
    assert services.follow_delete(follower=a, followee=b) is False
    b.refresh_from_db(), a.refresh_from_db()
    assert (b.follower_count, a.following_count) == (0, 0)


def test_follow_button_uses_htmx_partial(client):
    a, b = UserFactory(), UserFactory()
    client.force_login(a)
    response = client.post(reverse("follow", args=[b.username]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # a fragment, swapped in place
    assert 'data-testid="unfollow"' in html
    assert re.search(r'data-testid="follower-count">1<', html)
    response = client.post(reverse("unfollow", args=[b.username]), HTTP_HX_REQUEST="true")
    assert 'data-testid="follow"' in response.content.decode()
    b.refresh_from_db()
    assert b.follower_count == 0


def test_follow_without_htmx_redirects_to_profile(client):
    a, b = UserFactory(), UserFactory()
    client.force_login(a)
    response = client.post(reverse("follow", args=[b.username]))
    assert response.status_code == 302
    assert response["Location"] == b.get_absolute_url()


def test_follow_needs_post_and_sign_in(client):
    b = UserFactory()
    assert client.post(reverse("follow", args=[b.username])).status_code == 302  # to login
    client.force_login(UserFactory())
    assert client.get(reverse("follow", args=[b.username])).status_code == 405
    assert Follow.objects.count() == 0


def test_followers_list_is_paginated(client):
    host = followers_for(UserFactory(), 65)
    first = client.get(reverse("followers", args=[host.username]))
    assert first.status_code == 200
    assert first.context["page"].paginator.num_pages == 3
    assert len(first.context["page"].object_list) == 30
    last = client.get(reverse("followers", args=[host.username]) + "?page=3")
    assert len(last.context["page"].object_list) == 5
    following = client.get(reverse("following", args=[host.username]))
    assert following.context["page"].paginator.count == 0


# --- hosting eligibility ---------------------------------------------------


def test_599_followers_cannot_host(settings):
    settings.SPACES_HOST_MIN_FOLLOWERS = 600
    user = UserFactory()
    User.objects.filter(pk=user.pk).update(follower_count=599)
    user.refresh_from_db()
    eligibility = services.hosting_eligibility(user=user)
    assert not eligibility.allowed
    assert eligibility.reason == "599 of 600 followers"
    with pytest.raises(services.NotEligible, match="599 of 600 followers"):
        services.hosting_ensure_allowed(user=user)


def test_600_followers_can_host(settings):
    settings.SPACES_HOST_MIN_FOLLOWERS = 600
    user = UserFactory()
    User.objects.filter(pk=user.pk).update(follower_count=600)
    services.hosting_ensure_allowed(user=user)  # does not raise
    assert services.hosting_eligibility(user=user).allowed


def test_real_follows_reach_the_threshold(settings):
    settings.SPACES_HOST_MIN_FOLLOWERS = 5
    user = followers_for(UserFactory(), 4)
    assert not services.hosting_eligibility(user=user).allowed
    services.follow_create(follower=UserFactory(), followee=user)
    services.hosting_ensure_allowed(user=user)


def test_staff_can_grant_hosting_early():
    staff, user = UserFactory(is_staff=True), UserFactory()
    services.user_grant_hosting(user=user, by=staff)
    user.refresh_from_db()
    assert services.hosting_eligibility(user=user).allowed


def test_non_staff_cannot_grant_hosting():
    with pytest.raises(services.PermissionDenied):
        services.user_grant_hosting(user=UserFactory(), by=UserFactory())


def test_suspended_account_cannot_host_even_with_followers():
    staff, user = UserFactory(is_staff=True), UserFactory(hosting_granted=True)
    User.objects.filter(pk=user.pk).update(follower_count=10_000)
    services.user_suspend(user=user, by=staff)
    user.refresh_from_db()
    assert not user.is_active
    with pytest.raises(services.NotEligible, match="suspended"):
        services.hosting_ensure_allowed(user=user)
    services.user_reinstate(user=user, by=staff)
    services.hosting_ensure_allowed(user=user)


def test_suspension_ends_sessions(client):
    user = UserFactory()
    client.force_login(user)
    assert client.get(reverse("profile_edit")).status_code == 200
    services.user_suspend(user=user, by=UserFactory(is_staff=True))
    assert client.get(reverse("profile_edit")).status_code == 302


def test_start_page_shows_an_ineligible_user_what_they_lack(client, settings):
    settings.SPACES_HOST_MIN_FOLLOWERS = 600
    user = UserFactory()
    User.objects.filter(pk=user.pk).update(follower_count=412)
    client.force_login(user)
    page = client.get(reverse("rooms:space_new"))
    assert page.status_code == 403
    assert "412 of 600 followers" in page.content.decode()
    home = client.get(reverse("home"))
    assert "412 of 600 followers" in home.content.decode()


# --- pages and query counts -------------------------------------------------


def test_profile_page_query_count_does_not_grow_with_followers(client, django_assert_max_num_queries):
    viewer = UserFactory()
    host = followers_for(UserFactory(), 300)
    client.force_login(viewer)
    with django_assert_max_num_queries(8):  # two of them list the Spaces the person hosts
        response = client.get(host.get_absolute_url())
    assert response.status_code == 200
    assert 'data-testid="follower-count">300<' in response.content.decode()


def test_followers_page_query_count_is_constant(client, django_assert_max_num_queries):
    host = followers_for(UserFactory(), 120)
    with django_assert_max_num_queries(4):
        response = client.get(reverse("followers", args=[host.username]))
    assert response.status_code == 200


def test_home_page_query_count_with_many_follows(client, django_assert_max_num_queries):
    viewer = UserFactory()
    for other in make_users(100, prefix="followed"):
        services.follow_create(follower=viewer, followee=other)
    client.force_login(viewer)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("home"))
    assert response.status_code == 200


def test_profile_of_unknown_user_is_404(client):
    assert client.get("/u/nobody-here/").status_code == 404


def test_profile_text_is_escaped(client):
    person = UserFactory(bio="<script>alert(1)</script>", display_name="<b>bold</b>")
    html = client.get(person.get_absolute_url()).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    assert "<b>bold</b>" not in html


def test_profile_edit_saves_fields(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(
        reverse("profile_edit"), {"display_name": "Ana R", "bio": "Hello", "time_zone": "Europe/Madrid"}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.display_name, user.bio, user.time_zone) == ("Ana R", "Hello", "Europe/Madrid")


def test_profile_edit_refuses_overlong_bio(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("profile_edit"), {"bio": "x" * 301, "time_zone": "UTC"})
    assert response.status_code == 200
    assert "at most 300 characters" in response.content.decode()


def test_profile_edit_collects_a_date_of_birth_and_shows_it_back(client):
    user = UserFactory()
    client.force_login(user)
    page = client.get(reverse("profile_edit")).content.decode()
    assert 'type="date" name="date_of_birth"' in page
    response = client.post(
        reverse("profile_edit"), {"time_zone": "UTC", "date_of_birth": "1990-04-30", "display_name": "Ana"}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.date_of_birth == datetime.date(1990, 4, 30)
    assert 'value="1990-04-30"' in client.get(reverse("profile_edit")).content.decode()
    # Never shown on the public profile.
    assert "1990" not in client.get(user.get_absolute_url()).content.decode()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("2999-01-01", "can&#x27;t be in the future"),
        ("1800-01-01", "Check the year"),
        ("30/04/1990x", "Enter a valid date"),
    ],
)
def test_profile_edit_refuses_an_impossible_date_of_birth_and_keeps_the_old_one(client, raw, message):
    user = UserFactory(date_of_birth=datetime.date(1990, 4, 30))
    client.force_login(user)
    response = client.post(reverse("profile_edit"), {"time_zone": "UTC", "date_of_birth": raw})
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert 'class="field has-error"' in html  # beside its field
    user.refresh_from_db()
    assert user.date_of_birth == datetime.date(1990, 4, 30)


# --- sign-up, verification, password reset ---------------------------------


def test_sign_up_password_mismatch_is_shown_beside_the_second_password_like_every_form_error(client):
    response = client.post(
        reverse("account_signup"),
        {
            "email": "new@example.com",
            "username": "newperson",
            "password1": "correct-horse-99x",
            "password2": "different-horse-99x",
        },
    )
    html = response.content.decode()
    fields = re.findall(
        r'<div class="field( has-error)?">(.*?)</div>\s*(?=<div class="field|$|<button)', html, re.S
    )
    errored = [body for has_error, body in fields if has_error]
    assert len(errored) == 1
    assert 'id="id_password2"' in errored[0]
    assert 'class="field-error" id="id_password2_error"' in errored[0]
    assert "You must type the same password each time." in errored[0]
    assert 'aria-describedby="id_password2_error"' in errored[0]


def test_sign_up_sends_a_verification_email_and_confirming_logs_in(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "new@example.com", "username": "newbie", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert User.objects.filter(username="newbie").exists()
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    link = re.search(r"https?://[^\s]+/accounts/confirm-email/[^\s]+", body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    confirm = client.post("/" + path)
    assert confirm.status_code == 302
    assert EmailAddress.objects.get(email="new@example.com").verified


def test_sign_up_with_a_taken_handle_shows_an_error(client):
    UserFactory(username="taken")
    response = client.post(
        reverse("account_signup"),
        {"email": "x@example.com", "username": "taken", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 200
    assert "already" in response.content.decode().lower() or "taken" in response.content.decode().lower()


def test_password_reset_sends_a_link(client):
    user = UserFactory(email="reset@example.com")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    response = client.post(reverse("account_reset_password"), {"email": "reset@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


def test_suspended_account_cannot_sign_in(client):
    user = UserFactory(username="gone")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    services.user_suspend(user=user, by=UserFactory(is_staff=True))
    response = client.post(reverse("account_login"), {"login": "gone", "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    assert response.status_code == 403  # the suspended page (below)


def test_a_suspended_person_who_signs_in_is_told_why_and_how_to_appeal(client, settings):
    settings.SPACES_APPEALS_EMAIL = "appeals@spaces.example"
    user = UserFactory(username="gone")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    services.user_suspend(
        user=user, by=UserFactory(is_staff=True), reason="Spam links in <b>three</b> Spaces."
    )
    response = client.post(reverse("account_login"), {"login": "gone", "password": PASSWORD}, follow=True)
    html = response.content.decode()
    assert "_auth_user_id" not in client.session
    assert response.status_code == 403
    assert "Your account is suspended" in html
    assert "Spam links in &lt;b&gt;three&lt;/b&gt; Spaces." in html
    assert 'href="mailto:appeals@spaces.example?subject=Appeal%3A%20%40gone"' in html
    # Reinstated: the reason is gone with the suspension.
    services.user_reinstate(user=user, by=UserFactory(is_staff=True))
    user.refresh_from_db()
    assert user.suspension_reason == "" and user.is_active


def test_a_wrong_password_for_a_suspended_account_reveals_nothing(client):
    user = UserFactory(username="gone")
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    services.user_suspend(user=user, by=UserFactory(is_staff=True), reason="Private reason")
    response = client.post(reverse("account_login"), {"login": "gone", "password": "wrong-password-1"})
    assert "Private reason" not in response.content.decode()


def test_suspension_ends_the_sessions_already_open_cached_copies_included(client):
    from django.contrib.sessions.backends.cached_db import KEY_PREFIX
    from django.contrib.sessions.models import Session
    from django.core.cache import cache

    user = UserFactory()
    client.force_login(user)
    key = client.session.session_key
    assert cache.get(KEY_PREFIX + key) is not None  # sessions are read from the cache
    assert client.get(reverse("home")).context["user"] == user
    services.user_suspend(user=user, by=UserFactory(is_staff=True))
    assert not Session.objects.filter(session_key=key).exists()
    assert cache.get(KEY_PREFIX + key) is None
    assert not client.get(reverse("home")).context["user"].is_authenticated


# --- admin and moderators ----------------------------------------------------


def moderator():
    mod = UserFactory(is_staff=True)
    mod.groups.add(Group.objects.get(name=MODERATORS))
    return mod


def test_moderators_group_exists_with_account_permissions():
    group = Group.objects.get(name=MODERATORS)
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert {"view_user", "change_user"} <= codenames
    assert not any(c.endswith("_group") or c.endswith("_permission") for c in codenames)


def test_moderator_searches_users_and_sees_follower_counts(client):
    UserFactory(username="findme", email="findme@example.com")
    client.force_login(moderator())
    response = client.get(reverse("admin:accounts_user_changelist") + "?q=findme@example")
    assert response.status_code == 200
    assert "findme" in response.content.decode()
    assert "follower_count" in response.content.decode()


def test_moderator_suspends_and_grants_from_admin(client):
    target = UserFactory()
    client.force_login(moderator())
    url = reverse("admin:accounts_user_changelist")
    # Suspend and reinstate ask for a note first (moderation audits them), then act.
    client.post(url, {"action": "suspend_accounts", "_selected_action": [target.pk], "note_confirmed": "yes"})
    target.refresh_from_db()
    assert target.is_suspended
    reinstate = {"action": "reinstate_accounts", "_selected_action": [target.pk], "note_confirmed": "yes"}
    client.post(url, reinstate)
    client.post(url, {"action": "grant_hosting", "_selected_action": [target.pk]})
    target.refresh_from_db()
    assert not target.is_suspended and target.hosting_granted


def test_moderator_cannot_suspend_or_edit_a_superuser(client):
    boss = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(moderator())
    client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "suspend_accounts", "_selected_action": [boss.pk], "note_confirmed": "yes"},
    )
    boss.refresh_from_db()
    assert not boss.is_suspended
    response = client.post(reverse("admin:accounts_user_change", args=[boss.pk]), {"username": "hacked"})
    assert response.status_code == 403


def test_moderator_cannot_open_groups_admin(client):
    client.force_login(moderator())
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 403


def test_plain_user_cannot_open_the_admin(client):
    client.force_login(UserFactory())
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 302


# --- seed ---------------------------------------------------------------------


def test_seed_demo_is_safe_to_run_twice(capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    assert "password:" in first
    counts = (User.objects.count(), Follow.objects.count())
    call_command("seed_demo")
    second = capsys.readouterr().out
    assert "password:" not in second
    assert (User.objects.count(), Follow.objects.count()) == counts
    host = User.objects.get(username="ana")
    assert host.follower_count == Follow.objects.filter(followee=host).count() >= 600
    assert services.hosting_eligibility(user=host).allowed


def test_suspending_reads_only_that_persons_sessions(client):
    from django.contrib.sessions.models import Session
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    others = []
    for _ in range(5):
        other = Client()
        other.force_login(UserFactory())
        others.append(other.session.session_key)
    user = UserFactory()
    client.force_login(user)
    second = Client()
    second.force_login(user)
    mine = {client.session.session_key, second.session.session_key}
    with CaptureQueriesContext(connection) as queries:
        services.user_suspend(user=user, by=UserFactory(is_staff=True))
    session_reads = [
        q["sql"] for q in queries if "django_session" in q["sql"] and q["sql"].startswith("SELECT")
    ]
    # No scan of every live session: each read names the session it wants.
    assert all("session_key" in sql.split("WHERE", 1)[-1] for sql in session_reads), session_reads
    assert not Session.objects.filter(session_key__in=mine).exists()
    assert Session.objects.filter(session_key__in=others).count() == 5
