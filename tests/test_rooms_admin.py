"""The Spaces admin: live listener counts without N+1, and ending a Space tells everyone."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.groups import MODERATORS, ensure_moderators_group
from rooms.models import Space
from tests.factories import UserFactory, make_users
from tests.rooms_support import join, live_space, make_host

pytestmark = pytest.mark.django_db


@pytest.fixture
def moderator():
    ensure_moderators_group()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=MODERATORS))
    return user


def test_space_list_shows_live_listener_counts_in_a_fixed_number_of_queries(
    client, moderator, django_assert_max_num_queries
):
    for i in range(15):
        space = live_space(make_host())
        for user in make_users(i, prefix=f"l{i}_"):
            join(space, user)
    client.force_login(moderator)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("admin:rooms_space_changelist"))
    assert response.status_code == 200
    counts = sorted(s.listeners_now for s in response.context["cl"].result_list)
    assert counts == list(range(15))


def test_moderator_ends_a_live_space_from_the_admin(client, moderator):
    space = live_space()
    join(space)
    client.force_login(moderator)
    response = client.post(
        reverse("admin:rooms_space_changelist"),
        {"action": "end_spaces", "_selected_action": [space.pk]},
        follow=True,
    )
    assert response.status_code == 200
    space.refresh_from_db()
    assert (space.state, space.ended_reason) == (Space.State.ENDED, "moderator")
    assert "everyone in them was told" in response.content.decode()


def test_space_page_in_the_admin_lists_participants_read_only(client, moderator):
    space = live_space()
    join(space)
    client.force_login(moderator)
    response = client.get(reverse("admin:rooms_space_change", args=[space.pk]))
    assert response.status_code == 200
    assert "Participants" in response.content.decode()


def test_staff_without_the_permission_has_no_end_action(client):
    staff = UserFactory(is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_space"))
    space = live_space()
    client.force_login(staff)
    response = client.get(reverse("admin:rooms_space_changelist"))
    assert "end_spaces" not in response.content.decode()
    client.post(
        reverse("admin:rooms_space_changelist"), {"action": "end_spaces", "_selected_action": [space.pk]}
    )
    space.refresh_from_db()
    assert space.state == Space.State.LIVE
