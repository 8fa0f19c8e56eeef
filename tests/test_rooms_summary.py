"""The host's summary of a Space: computed once as it ends, from what was kept while it ran."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.urls import reverse

from accounts.groups import MODERATORS, ensure_moderators_group
from rooms import services
from rooms.captions.service import caption_line_record
from rooms.models import Participant, Space, SpaceSummary
from tests.factories import UserFactory
from tests.rooms_support import join, live_space, make_host
from tests.test_ticketing import complete
from tests.test_ticketing_support import begin, ticketed_space

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # reaction limits live in the cache; ids repeat between tests


def moderator():
    ensure_moderators_group()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=MODERATORS))
    return user


def test_a_space_that_ends_keeps_its_figures():
    host = make_host()
    space = live_space(host)
    join(space, host)
    amy, _ = join(space)
    bob, _ = join(space)
    cy, cy_channel = join(space)
    services.connection_close(channel_name=cy_channel)  # came and went: counted once, not at the end
    services.hand_raise(space=space, by=amy)
    services.speaker_accept(space=space, by=host, user_id=amy.pk)
    services.speaker_move_to_audience(space=space, by=host, user_id=amy.pk)  # spoke, then back down
    for emoji in ("😂", "💯", "❤️"):
        services.reaction_send(space=space, by=bob, emoji=emoji)
    Space.objects.filter(pk=space.pk).update(started_at=space.started_at - timedelta(minutes=42))

    services.space_end(space=space, by=host)

    summary = SpaceSummary.objects.get(space=space)
    assert 42 * 60 <= summary.duration_seconds < 43 * 60
    assert summary.peak_listeners == 3  # amy, bob and cy at once
    assert summary.total_listeners == 3
    assert summary.speakers == 1
    assert summary.reactions == 3
    assert summary.caption_lines == 0
    assert summary.extra_figures == []  # not ticketed: ticketing adds nothing


def test_the_summary_counts_caption_lines_and_is_made_when_a_moderator_or_the_sweep_ends_it():
    host = make_host()
    space = live_space(host, captions_enabled=True)
    join(space, host)
    event = {"name": host.name, "start": 1.0, "end": 2.5, "text": "hello everyone", "utterance": 1}
    caption_line_record(space_id=space.pk, speaker_id=host.pk, event=event)
    services.space_end(space=space, by=moderator())
    assert SpaceSummary.objects.get(space=space).caption_lines == 1

    other = live_space(make_host())  # the host never came back: the sweep ends it
    services.space_end(space=other, by=None)
    assert SpaceSummary.objects.filter(space=other).exists()


def test_a_cancelled_scheduled_space_has_no_summary():
    space = ticketed_space()
    services.space_end(space=space, by=space.host)
    assert not SpaceSummary.objects.filter(space=space).exists()


def test_ticket_revenue_comes_from_ticketing_through_the_hook():
    space = ticketed_space(price_cents=1000)
    for _ in range(2):
        complete(begin(space, UserFactory()))
    host = space.host
    host.hosting_granted = True
    host.save(update_fields=["hosting_granted"])
    space = services.space_start(space=space, by=host)
    services.space_end(space=space, by=host)
    figures = {f["key"]: f["value"] for f in SpaceSummary.objects.get(space=space).extra_figures}
    assert figures == {"tickets_sold": "2", "ticket_revenue": "$19.40"}  # 97% of $20.00


def test_stats_page_is_for_the_host_and_moderators_only(client):
    host = make_host()
    space = live_space(host)
    join(space, host)
    listener, _ = join(space)
    services.space_end(space=space, by=host)
    url = reverse("rooms:space_stats", args=[space.pk])

    client.force_login(host)
    html = client.get(url).content.decode()
    assert 'data-testid="summary-total">1<' in html
    assert "No captions were kept" in html
    client.force_login(moderator())
    assert client.get(url).status_code == 200
    client.force_login(listener)
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302


def test_the_end_dialog_loads_the_figures_for_the_host(client):
    host = make_host()
    space = live_space(host)
    client.force_login(host)
    page = client.get(space.get_absolute_url()).content.decode()
    stats_url = reverse("rooms:space_stats", args=[space.pk])
    assert f'hx-get="{stats_url}"' in page
    assert 'href="/moderation' not in page.split('id="ended"')[1]  # the host is not asked to rate
    services.space_end(space=space, by=host)
    partial = client.get(stats_url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and 'data-testid="summary"' in partial


def test_hosted_list_shows_each_ended_space_with_its_figures(client, django_assert_max_num_queries):
    host = make_host()
    for i in range(12):
        space = live_space(host, title=f"Show {i}")
        join(space)
        services.space_end(space=space, by=host)
    live_space(host, title="Still live")
    client.force_login(host)
    with django_assert_max_num_queries(8):
        html = client.get(reverse("rooms:spaces_hosted")).content.decode()
    assert html.count('class="hosted-row"') == 12
    assert "Still live" not in html
    assert "1 joined" in html


def test_an_ended_space_page_says_when_and_links_the_host_to_the_summary(client):
    host = make_host()
    space = live_space(host)
    services.space_end(space=space, by=host)
    client.force_login(host)
    html = client.get(space.get_absolute_url()).content.decode()
    assert 'data-testid="ended-when"' in html
    assert reverse("rooms:space_stats", args=[space.pk]) in html
    client.force_login(UserFactory())
    html = client.get(space.get_absolute_url()).content.decode()
    assert 'data-testid="ended-when"' in html and 'data-testid="summary-link"' not in html
    assert Participant.objects.filter(space=space).count() == 1
