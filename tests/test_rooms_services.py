"""The stage rules of a live Space, each allowed and refused, through rooms.services."""

import pytest
from django.core.exceptions import ValidationError

from accounts import services as accounts_services
from accounts.ratelimit import RateLimited
from accounts.services import NotEligible
from rooms import services
from rooms.models import Connection, Participant, Space
from tests.factories import UserFactory
from tests.rooms_support import join, live_space, make_host, role_of, seat

pytestmark = pytest.mark.django_db

Role = Participant.Role


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Reaction limits live in the cache; ids repeat between tests.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def room():
    """A live Space with its host and one listener present."""
    host = make_host()
    space = live_space(host)
    join(space, host)
    listener, _ = join(space)
    return space, host, listener


def p(space, user) -> Participant:
    return Participant.objects.get(space=space, user=user)


# --- creating, starting, ending ---------------------------------------------------------------


def test_eligible_host_opens_a_live_space_and_is_on_stage():
    host = make_host()
    space = services.space_create(host=host, title="  Hello  ", topics=["music"], speak_policy="followed")
    assert space.state == Space.State.LIVE and space.title == "Hello" and space.started_at
    assert role_of(space, host) == Role.HOST


def test_ineligible_account_cannot_open_a_space(settings):
    settings.SPACES_HOST_MIN_FOLLOWERS = 600
    with pytest.raises(NotEligible, match="0 of 600 followers"):
        services.space_create(host=UserFactory(), title="Nope")
    assert not Space.objects.exists()


def test_title_of_70_characters_is_accepted_and_71_refused():
    host = make_host()
    services.space_create(host=host, title="x" * 70)
    with pytest.raises(ValidationError, match="up to 70"):
        services.space_create(host=make_host(), title="x" * 71)


def test_three_topics_accepted_four_refused():
    services.space_create(host=make_host(), title="t", topics=["a", "b", "c"])
    with pytest.raises(ValidationError, match="at most 3"):
        services.space_create(host=make_host(), title="t", topics=["a", "b", "c", "d"])


def test_unknown_speak_policy_is_refused():
    with pytest.raises(ValidationError, match="who can speak"):
        services.space_create(host=make_host(), title="t", speak_policy="anyone")


def test_a_host_cannot_run_two_live_spaces():
    host = make_host()
    services.space_create(host=host, title="one")
    with pytest.raises(ValidationError, match="already hosting"):
        services.space_create(host=host, title="two")


def test_scheduled_space_starts_only_by_its_host():
    host = make_host()
    space = Space.objects.create(host=host, title="later", state=Space.State.SCHEDULED)
    with pytest.raises(services.RoomForbidden):
        services.space_start(space=space, by=make_host())
    space = services.space_start(space=space, by=host)
    assert space.state == Space.State.LIVE and role_of(space, host) == Role.HOST


def test_ended_space_cannot_restart(room):
    space, host, _ = room
    services.space_end(space=space, by=host)
    with pytest.raises(services.NotLive, match="can't be restarted"):
        services.space_start(space=space, by=host)


def test_host_ends_the_space_and_everyone_leaves(room):
    space, host, listener = room
    space = services.space_end(space=space, by=host)
    assert (space.state, space.ended_reason) == (Space.State.ENDED, "host")
    assert not Connection.objects.filter(space=space).exists()
    assert p(space, listener).left_at is not None


def test_listener_and_cohost_cannot_end_the_space(room):
    space, host, listener = room
    cohost, _ = join(space)
    seat(space, cohost, Role.COHOST)
    for who in (listener, cohost):
        with pytest.raises(services.RoomForbidden, match="Only the host"):
            services.space_end(space=space, by=who)
    space.refresh_from_db()
    assert space.state == Space.State.LIVE


def test_moderator_ends_a_space(room):
    from django.contrib.auth.models import Group

    from accounts.groups import MODERATORS, ensure_moderators_group

    space, _, _ = room
    ensure_moderators_group()
    moderator = UserFactory(is_staff=True)
    moderator.groups.add(Group.objects.get(name=MODERATORS))
    space = services.space_end(space=space, by=moderator)
    assert space.ended_reason == "moderator"


def test_staff_without_the_permission_cannot_end_a_space(room):
    space, _, _ = room
    with pytest.raises(services.RoomForbidden):
        services.space_end(space=space, by=UserFactory(is_staff=True))


def test_ending_twice_is_refused(room):
    space, host, _ = room
    services.space_end(space=space, by=host)
    with pytest.raises(services.NotLive, match="already ended"):
        services.space_end(space=space, by=host)


# --- entering ------------------------------------------------------------------------------------


def test_suspended_user_cannot_join(room):
    space, _, _ = room
    user = UserFactory()
    accounts_services.user_suspend(user=user, by=UserFactory(is_staff=True))
    user.refresh_from_db()
    with pytest.raises(services.EntryRefused, match="suspended"):
        join(space, user)


def test_nobody_joins_an_ended_space(room):
    space, host, _ = room
    services.space_end(space=space, by=host)
    with pytest.raises(services.EntryRefused, match="ended"):
        join(space)


def test_removed_person_cannot_rejoin(room):
    space, host, listener = room
    services.participant_remove(space=space, by=host, user_id=listener.pk)
    with pytest.raises(services.EntryRefused, match="removed"):
        join(space, listener)


# --- hands -----------------------------------------------------------------------------------------


def test_listener_raises_and_lowers_a_hand(room):
    space, _, listener = room
    assert services.hand_raise(space=space, by=listener).hand_raised_at
    assert services.hand_lower(space=space, by=listener).hand_raised_at is None


def test_speaker_cannot_raise_a_hand(room):
    space, _, listener = room
    seat(space, listener, Role.SPEAKER)
    with pytest.raises(services.RoomError, match="already on stage"):
        services.hand_raise(space=space, by=listener)


def test_host_accepts_a_raised_hand(room):
    space, host, listener = room
    services.hand_raise(space=space, by=listener)
    services.speaker_accept(space=space, by=host, user_id=listener.pk)
    me = p(space, listener)
    assert (me.role, me.hand_raised_at, me.muted) == (Role.SPEAKER, None, True)


def test_cohost_accepts_and_dismisses_hands(room):
    space, _, listener = room
    cohost, _ = join(space)
    seat(space, cohost, Role.COHOST)
    other, _ = join(space)
    services.hand_raise(space=space, by=listener)
    services.hand_raise(space=space, by=other)
    services.speaker_accept(space=space, by=cohost, user_id=listener.pk)
    services.hand_dismiss(space=space, by=cohost, user_id=other.pk)
    assert role_of(space, listener) == Role.SPEAKER
    assert (role_of(space, other), p(space, other).hand_raised_at) == (Role.LISTENER, None)


def test_accepting_a_hand_that_is_not_raised_is_refused(room):
    space, host, listener = room
    with pytest.raises(services.RoomError, match="no longer raised"):
        services.speaker_accept(space=space, by=host, user_id=listener.pk)
    assert role_of(space, listener) == Role.LISTENER


def test_speaker_cannot_accept_or_dismiss_hands(room):
    space, _, listener = room
    speaker, _ = join(space)
    seat(space, speaker, Role.SPEAKER)
    services.hand_raise(space=space, by=listener)
    with pytest.raises(services.RoomForbidden):
        services.speaker_accept(space=space, by=speaker, user_id=listener.pk)
    with pytest.raises(services.RoomForbidden):
        services.hand_dismiss(space=space, by=speaker, user_id=listener.pk)
    assert p(space, listener).hand_raised_at is not None


# --- speak policy ---------------------------------------------------------------------------------


def test_followed_policy_lets_only_people_the_host_follows_raise_a_hand():
    host = make_host()
    space = live_space(host, speak_policy="followed")
    friend, _ = join(space)
    stranger, _ = join(space)
    accounts_services.follow_create(follower=host, followee=friend)
    services.hand_raise(space=space, by=friend)
    with pytest.raises(services.NotAllowedToSpeak, match="host follows"):
        services.hand_raise(space=space, by=stranger)


def test_invited_only_policy_refuses_hands_but_invitations_work():
    host = make_host()
    space = live_space(host, speak_policy="invited")
    listener, _ = join(space)
    with pytest.raises(services.NotAllowedToSpeak, match="invites"):
        services.hand_raise(space=space, by=listener)
    services.speaker_invite(space=space, by=host, user_id=listener.pk)
    services.invite_accept(space=space, by=listener)
    assert role_of(space, listener) == Role.SPEAKER


# --- invitations ---------------------------------------------------------------------------------


def test_invited_listener_declines(room):
    space, host, listener = room
    services.speaker_invite(space=space, by=host, user_id=listener.pk)
    services.invite_decline(space=space, by=listener)
    me = p(space, listener)
    assert (me.role, me.invited_at) == (Role.LISTENER, None)


def test_accepting_without_an_invitation_is_refused(room):
    space, _, listener = room
    with pytest.raises(services.RoomError, match="no invitation"):
        services.invite_accept(space=space, by=listener)


def test_listener_cannot_invite(room):
    space, _, listener = room
    other, _ = join(space)
    with pytest.raises(services.RoomForbidden):
        services.speaker_invite(space=space, by=listener, user_id=other.pk)


def test_cannot_invite_someone_who_is_not_here(room):
    space, host, _ = room
    absent, channel = join(space)
    services.connection_close(channel_name=channel)
    with pytest.raises(services.NotInSpace, match="isn't here"):
        services.speaker_invite(space=space, by=host, user_id=absent.pk)


# --- co-hosts ------------------------------------------------------------------------------------


def test_host_appoints_two_cohosts_but_not_three(room):
    space, host, listener = room
    second, _ = join(space)
    third, _ = join(space)
    services.cohost_appoint(space=space, by=host, user_id=listener.pk)
    services.cohost_appoint(space=space, by=host, user_id=second.pk)
    with pytest.raises(services.StageFull, match="2 co-hosts"):
        services.cohost_appoint(space=space, by=host, user_id=third.pk)
    assert role_of(space, third) == Role.LISTENER


def test_only_the_host_appoints_or_removes_cohosts(room):
    space, host, listener = room
    cohost, _ = join(space)
    seat(space, cohost, Role.COHOST)
    with pytest.raises(services.RoomForbidden, match="Only the host"):
        services.cohost_appoint(space=space, by=cohost, user_id=listener.pk)
    with pytest.raises(services.RoomForbidden, match="Only the host"):
        services.cohost_remove(space=space, by=cohost, user_id=cohost.pk)
    services.cohost_remove(space=space, by=host, user_id=cohost.pk)
    assert role_of(space, cohost) == Role.SPEAKER


def test_cohost_cannot_remove_the_host(room):
    space, host, _ = room
    cohost, _ = join(space)
    seat(space, cohost, Role.COHOST)
    with pytest.raises(services.RoomForbidden, match="Nobody can remove the host"):
        services.participant_remove(space=space, by=cohost, user_id=host.pk)
    assert p(space, host).removed_at is None


def test_cohost_cannot_touch_another_cohost(room):
    space, _, _ = room
    a, _ = join(space)
    b, _ = join(space)
    seat(space, a, Role.COHOST)
    seat(space, b, Role.COHOST)
    Participant.objects.filter(space=space, user=b).update(muted=False)
    for action in (services.participant_remove, services.speaker_move_to_audience, services.mute_other):
        with pytest.raises(services.RoomForbidden, match="Only the host"):
            action(space=space, by=a, user_id=b.pk)
    b_row = p(space, b)
    assert (b_row.role, b_row.muted, b_row.removed_at) == (Role.COHOST, False, None)


def test_cohost_moves_a_speaker_to_the_audience_and_removes_a_listener(room):
    space, _, listener = room
    cohost, _ = join(space)
    speaker, _ = join(space)
    seat(space, cohost, Role.COHOST)
    seat(space, speaker, Role.SPEAKER)
    services.speaker_move_to_audience(space=space, by=cohost, user_id=speaker.pk)
    services.participant_remove(space=space, by=cohost, user_id=listener.pk)
    assert role_of(space, speaker) == Role.LISTENER
    assert p(space, listener).removed_at is not None
    assert not Connection.objects.filter(space=space, user=listener).exists()


def test_host_can_move_a_cohost_to_the_audience(room):
    space, host, _ = room
    cohost, _ = join(space)
    seat(space, cohost, Role.COHOST)
    services.speaker_move_to_audience(space=space, by=host, user_id=cohost.pk)
    assert role_of(space, cohost) == Role.LISTENER


def test_nobody_moves_the_host_off_stage(room):
    space, host, _ = room
    with pytest.raises(services.RoomForbidden):
        services.speaker_move_to_audience(space=space, by=host, user_id=host.pk)


def test_speaker_steps_down_and_host_cannot(room):
    space, host, listener = room
    seat(space, listener, Role.SPEAKER)
    services.speaker_step_down(space=space, by=listener)
    assert role_of(space, listener) == Role.LISTENER
    with pytest.raises(services.RoomError, match="End the Space"):
        services.speaker_step_down(space=space, by=host)


def test_listener_cannot_remove_anyone(room):
    space, _, listener = room
    other, _ = join(space)
    with pytest.raises(services.RoomForbidden):
        services.participant_remove(space=space, by=listener, user_id=other.pk)


# --- microphones -----------------------------------------------------------------------------------


def test_speaker_mutes_and_unmutes_themselves(room):
    space, _, listener = room
    seat(space, listener, Role.SPEAKER)
    assert services.unmute_self(space=space, by=listener).muted is False
    assert services.mute_self(space=space, by=listener).muted is True


def test_listener_has_no_microphone(room):
    space, _, listener = room
    with pytest.raises(services.RoomForbidden, match="on stage"):
        services.unmute_self(space=space, by=listener)


def test_host_and_cohost_mute_a_speaker(room):
    space, host, listener = room
    cohost, _ = join(space)
    seat(space, cohost, Role.COHOST)
    seat(space, listener, Role.SPEAKER)
    services.unmute_self(space=space, by=listener)
    services.mute_other(space=space, by=cohost, user_id=listener.pk)
    assert p(space, listener).muted
    services.unmute_self(space=space, by=listener)
    services.mute_other(space=space, by=host, user_id=listener.pk)
    assert p(space, listener).muted


def test_listener_cannot_unmute_a_speaker(room):
    space, _, listener = room
    speaker, _ = join(space)
    seat(space, speaker, Role.SPEAKER)
    with pytest.raises(services.RoomForbidden, match="unmute themselves"):
        services.unmute_other(space=space, by=listener, user_id=speaker.pk)
    with pytest.raises(services.RoomForbidden):
        services.mute_other(space=space, by=listener, user_id=speaker.pk)
    assert p(space, speaker).muted


def test_not_even_the_host_can_unmute_someone(room):
    space, host, listener = room
    seat(space, listener, Role.SPEAKER)
    with pytest.raises(services.RoomForbidden):
        services.unmute_other(space=space, by=host, user_id=listener.pk)
    assert p(space, listener).muted


def test_cohost_cannot_mute_the_host(room):
    space, host, _ = room
    cohost, _ = join(space)
    seat(space, cohost, Role.COHOST)
    services.unmute_self(space=space, by=host)
    with pytest.raises(services.RoomForbidden, match="host"):
        services.mute_other(space=space, by=cohost, user_id=host.pk)
    assert not p(space, host).muted


# --- reactions, captions, versions ----------------------------------------------------------------


def test_reactions_are_limited_per_person(room, settings):
    from django.core.cache import cache

    cache.clear()
    settings.SPACES_REACTIONS_PER_WINDOW = 3
    settings.SPACES_REACTIONS_WINDOW_SECONDS = 60
    space, host, listener = room
    for _ in range(3):
        services.reaction_send(space=space, by=listener, emoji="💯")
    with pytest.raises(RateLimited):
        services.reaction_send(space=space, by=listener, emoji="💯")
    services.reaction_send(space=space, by=host, emoji="👋")  # others are not affected


@pytest.mark.parametrize("emoji", ["😂", "💯", "✋", "✊", "✌️", "👋", "❤️"])
def test_each_of_the_seven_reactions_is_accepted(
    room, emoji, monkeypatch, django_capture_on_commit_callbacks
):
    space, _, listener = room
    sent = []
    monkeypatch.setattr("rooms.events._send", lambda group, message: sent.append((group, message)))
    with django_capture_on_commit_callbacks(execute=True):
        services.reaction_send(space=space, by=listener, emoji=emoji)
    events = [message["event"] for _, message in sent]
    assert {"type": "reaction", "user_id": listener.pk, "emoji": emoji} in events


def test_a_reaction_counts_only_from_someone_in_a_live_space(room):
    space, host, listener = room
    services.reaction_send(space=space, by=listener, emoji="💯")
    with pytest.raises(services.NotInSpace):
        services.reaction_send(space=space, by=UserFactory(), emoji="💯")
    services.participant_remove(space=space, by=host, user_id=listener.pk)
    with pytest.raises(services.NotInSpace):
        services.reaction_send(space=space, by=listener, emoji="💯")
    services.space_end(space=space, by=host)
    with pytest.raises(services.NotLive):
        services.reaction_send(space=space, by=host, emoji="💯")
    space.refresh_from_db()
    assert space.reaction_count == 1


def test_other_emoji_are_refused(room):
    space, _, listener = room
    with pytest.raises(services.RoomError) as info:
        services.reaction_send(space=space, by=listener, emoji="🍕")
    assert info.value.code == "bad_field"


def test_only_the_host_toggles_captions(room):
    space, host, listener = room
    with pytest.raises(services.RoomForbidden):
        services.captions_toggle(space=space, by=listener, on=True)
    assert services.captions_toggle(space=space, by=host, on=True).captions_enabled


def test_every_stage_change_bumps_the_version_once(room):
    space, host, listener = room
    services.hand_raise(space=space, by=listener)  # 1
    services.speaker_accept(space=space, by=host, user_id=listener.pk)  # 2 (hand) + 3 (role)
    services.unmute_self(space=space, by=listener)  # 4
    services.unmute_self(space=space, by=listener)  # no change, no bump
    space.refresh_from_db()
    assert space.version == 4


def test_a_refused_action_changes_nothing(room):
    space, _, listener = room
    before = Space.objects.get(pk=space.pk).version
    with pytest.raises(services.RoomForbidden):
        services.captions_toggle(space=space, by=listener, on=True)
    space.refresh_from_db()
    assert (space.version, space.captions_enabled) == (before, False)
