"""Transcripts after a Space ends: who sees them, publishing, deleting, and the downloads."""

from __future__ import annotations

import os

import pytest
from django.test import Client
from django.urls import reverse

from rooms import services
from rooms.captions import service as captions
from rooms.models import CaptionLine, Space, Transcript
from rooms.services import RoomError
from tests.factories import UserFactory
from tests.rooms_support import live_space, make_host

pytestmark = pytest.mark.django_db


def client_for(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def add_line(space, speaker, start, text, end=None) -> CaptionLine:
    return CaptionLine.objects.create(
        space=space, speaker=speaker, speaker_name=speaker.name, start=start, end=end or start + 2, text=text
    )


@pytest.fixture
def ended():
    """An ended, captioned Space with two lines; its host and a listener who was there."""
    host = make_host(display_name="Ana")
    guest = UserFactory(display_name="Ben <b>")
    space = live_space(host, captions_enabled=True, title="Open mic night")
    add_line(space, host, 1.5, "good morning everyone")
    add_line(space, guest, 3723.25, "it is time to go & <see>", end=3725.0)
    services.space_end(space=space, by=host)
    return Space.objects.get(pk=space.pk), host, guest


def page(client, space):
    return client.get(reverse("rooms:transcript", args=[space.pk]))


def closed_page(client, space):
    return client.get(space.get_absolute_url())


# --- visibility -----------------------------------------------------------------------------------


def test_only_the_host_sees_a_transcript_until_it_is_published(ended):
    space, host, guest = ended
    response = page(client_for(host), space)
    assert response.status_code == 200
    body = response.content.decode()
    assert "good morning everyone" in body and "Ben &lt;b&gt;" in body
    assert "Only you can see this" in body and 'data-testid="transcript-publish"' in body
    assert page(client_for(guest), space).status_code == 404
    assert page(client_for(), space).status_code == 404
    assert 'data-testid="transcript"' not in closed_page(client_for(guest), space).content.decode()
    host_closed = closed_page(client_for(host), space).content.decode()
    assert 'data-testid="transcript"' in host_closed and "Only you can see this" in host_closed


def test_a_published_transcript_is_shown_to_everyone_on_the_ended_space_page(ended):
    space, host, guest = ended
    response = client_for(host).post(reverse("rooms:transcript_publish", args=[space.pk]))
    assert response.status_code == 302
    assert Transcript.objects.get(space=space).is_published
    for viewer in (guest, UserFactory(), None):
        body = closed_page(client_for(viewer), space).content.decode()
        assert 'data-testid="transcript"' in body
        assert "good morning everyone" in body
        assert "01:02:03" in body  # 3723.25 s into the Space
        assert "it is time to go &amp; &lt;see&gt;" in body
        assert 'data-testid="transcript-delete"' not in body
        assert page(client_for(viewer), space).status_code == 200

    client_for(host).post(reverse("rooms:transcript_unpublish", args=[space.pk]))
    assert page(client_for(guest), space).status_code == 404
    assert 'data-testid="transcript"' not in closed_page(client_for(guest), space).content.decode()


def test_the_ended_page_reads_the_transcript_in_a_fixed_number_of_queries(
    ended, django_assert_max_num_queries
):
    space, host, guest = ended
    for i in range(150):
        add_line(space, guest if i % 2 else host, 10 + i, f"line {i}")
    captions.transcript_publish(space=space, by=host)
    client = client_for(UserFactory())
    with django_assert_max_num_queries(14):
        body = closed_page(client, space).content.decode()
    assert "line 149" in body


def test_the_host_sees_the_lines_so_far_while_live_but_cannot_publish_yet():
    host = make_host()
    space = live_space(host, captions_enabled=True)
    add_line(space, host, 1, "still talking")
    body = page(client_for(host), space).content.decode()
    assert "still talking" in body and "still live" in body
    assert 'data-testid="transcript-publish"' not in body
    client_for(host).post(reverse("rooms:transcript_publish", args=[space.pk]))
    assert not Transcript.objects.filter(space=space, published_at__isnull=False).exists()
    with pytest.raises(RoomError, match="once the Space has ended"):
        captions.transcript_publish(space=space, by=host)


# --- publish and delete: the host's alone --------------------------------------------------------


def test_nobody_but_the_host_can_publish_unpublish_or_delete(ended):
    space, host, guest = ended
    cohost_or_anyone = client_for(guest)
    for name in ("transcript_publish", "transcript_unpublish", "transcript_delete"):
        response = cohost_or_anyone.post(reverse(f"rooms:{name}", args=[space.pk]))
        assert response.status_code == 403, name
    assert (
        client_for().post(reverse("rooms:transcript_delete", args=[space.pk])).status_code == 302
    )  # sign in
    assert CaptionLine.objects.filter(space=space).count() == 2
    assert not Transcript.objects.filter(space=space).exists()
    assert client_for(host).get(reverse("rooms:transcript_publish", args=[space.pk])).status_code == 405


def test_an_empty_transcript_cannot_be_published():
    host = make_host()
    space = live_space(host, captions_enabled=True)
    services.space_end(space=space, by=host)
    with pytest.raises(RoomError, match="nothing to publish"):
        captions.transcript_publish(space=Space.objects.get(pk=space.pk), by=host)
    body = closed_page(client_for(host), space).content.decode()
    assert "No one was captioned" in body


def test_deleting_removes_every_line_for_good(ended):
    space, host, guest = ended
    captions.transcript_publish(space=space, by=host)
    response = client_for(host).post(reverse("rooms:transcript_delete", args=[space.pk]))
    assert response.status_code == 302 and response["Location"] == space.get_absolute_url()
    assert CaptionLine.objects.filter(space=space).count() == 0
    for viewer in (host, guest, None):
        assert page(client_for(viewer), space).status_code == 404
        assert 'data-testid="transcript"' not in closed_page(client_for(viewer), space).content.decode()
        assert (
            client_for(viewer).get(reverse("rooms:transcript_download", args=[space.pk, "vtt"])).status_code
            == 404
        )
    with pytest.raises(RoomError, match="deleted"):
        captions.transcript_publish(space=space, by=host)


# --- downloads ------------------------------------------------------------------------------------


def test_webvtt_download(ended):
    space, host, _ = ended
    response = client_for(host).get(reverse("rooms:transcript_download", args=[space.pk, "vtt"]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/vtt; charset=utf-8"
    assert (
        response["Content-Disposition"] == f'attachment; filename="open-mic-night-{space.pk}-transcript.vtt"'
    )
    assert response.content.decode() == (
        "WEBVTT\n\n"
        "00:00:01.500 --> 00:00:03.500\n<v Ana>good morning everyone</v>\n\n"
        "01:02:03.250 --> 01:02:05.000\n<v Ben &lt;b&gt;>it is time to go &amp; &lt;see&gt;</v>\n"
    )


def test_plain_text_download(ended):
    space, host, _ = ended
    response = client_for(host).get(reverse("rooms:transcript_download", args=[space.pk, "txt"]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"].endswith('-transcript.txt"')
    assert response.content.decode() == (
        "[00:00:01] Ana: good morning everyone\n[01:02:03] Ben <b>: it is time to go & <see>\n"
    )


def test_downloads_follow_the_page_rules(ended):
    space, host, guest = ended
    url = reverse("rooms:transcript_download", args=[space.pk, "txt"])
    assert client_for(guest).get(url).status_code == 404
    captions.transcript_publish(space=space, by=host)
    assert client_for(guest).get(url).status_code == 200
    assert client_for().get(url).status_code == 200
    assert (
        client_for(host).get(reverse("rooms:transcript_download", args=[space.pk, "srt"])).status_code == 404
    )


# --- the caption event's times --------------------------------------------------------------------


def test_caption_times_are_seconds_since_the_space_started_and_one_utterance_keeps_its_id():
    from rooms.captions.events import CaptionEvent

    info = captions.SpeakerInfo(name="Ana", host_id=1, space_started_at=1_000.0)
    partial = captions.caption_event(CaptionEvent("partial", 5, 7, "good", 2.0, 2.5, 1_030.0), info)
    final = captions.caption_event(CaptionEvent("final", 5, 7, "good morning", 2.0, 3.25, 1_030.0), info)
    assert partial == {
        "type": "caption",
        "user_id": 7,
        "name": "Ana",
        "text": "good",
        "final": False,
        "utterance": 1_032_000,
        "start": 32.0,
        "end": 32.5,
    }
    assert final["final"] is True and final["utterance"] == partial["utterance"] and final["end"] == 33.25


# --- the transcript improved after the end --------------------------------------------------------


SPOKEN = [
    (1.5, "volunteers give their time"),
    (5.0, "please call me when you get home"),
    (9.25, "we will meet at the station tomorrow morning"),
]


@pytest.fixture
def kept_speech(settings, tmp_path, django_capture_on_commit_callbacks, monkeypatch):
    """A live Space whose three caption lines were caught badly live, with their speech kept as the
    Whisper engine keeps it; the Space then ends. Returns the Space, its host and the queued task's
    Space ids."""
    from rooms import tasks
    from tests.test_captions_engine import speak, with_noise_floor

    settings.MEDIA_ROOT = tmp_path / "media"
    queued = []
    monkeypatch.setattr(tasks.transcript_improve, "delay", queued.append)
    host = make_host(display_name="Ana")
    guest = UserFactory(display_name="Ben")
    space = live_space(host, captions_enabled=True, title="Volunteers")
    for (start, text), speaker in zip(SPOKEN, [host, guest, host], strict=True):
        pcm = with_noise_floor(bytes(6400) + speak(text, tmp_path) + bytes(6400))
        event = {
            "name": speaker.name,
            "start": start,
            "end": start + 2.5,
            "text": "mumble",
            "utterance": start,
        }
        captions.caption_line_record(space_id=space.pk, speaker_id=speaker.pk, event=event, audio=pcm)
    with django_capture_on_commit_callbacks(execute=True):
        services.space_end(space=space, by=host)
    return Space.objects.get(pk=space.pk), host, queued


def test_ending_a_space_queues_the_improved_transcript_which_replaces_lines_keeping_order_and_times(
    kept_speech, django_capture_on_commit_callbacks
):
    from notifications.models import Delivery
    from rooms import tasks
    from tests.test_captions_engine import words

    space, host, queued = kept_speech
    assert queued == [space.pk]
    before = list(CaptionLine.objects.filter(space=space).order_by("start", "pk"))
    files = [line.audio.path for line in before]
    assert all(line.audio and line.text == "mumble" for line in before)

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.transcript_improve(space.pk) == 3

    after = list(CaptionLine.objects.filter(space=space).order_by("start", "pk"))
    assert [(a.pk, a.speaker_id, a.start, a.end) for a in after] == [
        (b.pk, b.speaker_id, b.start, b.end) for b in before
    ]
    for line, (_, spoken) in zip(after, SPOKEN, strict=True):
        assert len(words(line.text) & set(spoken.split())) >= len(spoken.split()) - 1, line.text
    assert not any(line.audio for line in after), "the speech is forgotten once used"
    assert not any(os.path.exists(f) for f in files)
    assert Transcript.objects.get(space=space).improved_at is not None
    notice = Delivery.objects.get(recipient=host, kind="transcript_improved")
    assert notice.title == "Transcript improved" and "3 of 3 lines" in notice.body
    vtt = client_for(host).get(reverse("rooms:transcript_download", args=[space.pk, "vtt"])).content.decode()
    assert "station tomorrow morning" in vtt.lower() and "mumble" not in vtt
    body = page(client_for(host), space).content.decode()
    assert "Transcript improved" in body

    assert tasks.transcript_improve(space.pk) == 0, "a second run has nothing left to do"


def test_a_transcript_deleted_before_it_is_improved_stays_deleted_and_its_speech_goes(
    kept_speech, django_capture_on_commit_callbacks
):
    from rooms import tasks

    space, host, _ = kept_speech
    files = [line.audio.path for line in CaptionLine.objects.filter(space=space)]
    assert all(os.path.exists(f) for f in files)
    with django_capture_on_commit_callbacks(execute=True):
        captions.transcript_delete(space=space, by=host)
    assert tasks.transcript_improve(space.pk) == 0
    assert CaptionLine.objects.filter(space=space).count() == 0
    assert not any(os.path.exists(f) for f in files)


def test_the_hourly_sweep_deletes_speech_kept_past_its_use_and_files_no_line_names(
    settings, tmp_path, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.utils import timezone

    from rooms import rules

    settings.MEDIA_ROOT = tmp_path / "media"
    host = make_host()
    old_end = timezone.now() - timedelta(hours=rules.CAPTION_AUDIO_KEEP_HOURS + 1)
    long_over = live_space(host, captions_enabled=True)
    just_over = live_space(make_host(), captions_enabled=True)
    still_live = live_space(make_host(), captions_enabled=True)
    lines = {}
    for name, space in {"long_over": long_over, "just_over": just_over, "still_live": still_live}.items():
        line = add_line(space, space.host, 1.0, "kept speech")
        line.audio.save(f"{name}.wav", ContentFile(captions.wav_of(bytes(3200))))
        lines[name] = line
    Space.objects.filter(pk=long_over.pk).update(state=Space.State.ENDED, ended_at=old_end)
    Space.objects.filter(pk=just_over.pk).update(state=Space.State.ENDED, ended_at=timezone.now())
    old_orphan = default_storage.save("captions/2026/01/orphan.wav", ContentFile(b"RIFF"))
    new_orphan = default_storage.save("captions/2026/12/recent.wav", ContentFile(b"RIFF"))
    past = (timezone.now() - timedelta(hours=rules.CAPTION_AUDIO_KEEP_HOURS + 2)).timestamp()
    os.utime(default_storage.path(old_orphan), (past, past))
    paths = {name: line.audio.path for name, line in lines.items()}

    with django_capture_on_commit_callbacks(execute=True):
        assert captions.caption_audio_sweep() == {"lines_cleared": 1, "orphans_deleted": 1}

    assert not os.path.exists(paths["long_over"]) and not os.path.exists(default_storage.path(old_orphan))
    for name in ("just_over", "still_live"):
        assert os.path.exists(paths[name]) and CaptionLine.objects.get(pk=lines[name].pk).audio
    assert os.path.exists(default_storage.path(new_orphan))
    kept = CaptionLine.objects.get(pk=lines["long_over"].pk)
    assert kept.text == "kept speech" and not kept.audio  # the line stays; only its speech goes
    assert captions.caption_audio_sweep() == {"lines_cleared": 0, "orphans_deleted": 0}
