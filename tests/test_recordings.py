"""Recording a Space: who may turn it on, REC for everyone, the capture, the replay files, deletion,
retention, the replay's page and files (Range), the captions and chapters, and the podcast feed."""

from __future__ import annotations

import datetime as dt

import feedparser
import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from rooms import services
from rooms.models import CaptionLine, Participant, Recording, RecordingChunk, Space, SpeakerMark
from rooms.recordings import processing, service
from rooms.recordings.selectors import Timeline, replay_chapters
from rooms.scheduling import space_schedule
from rooms.selectors import space_snapshot
from tests.factories import UserFactory
from tests.recording_support import decode_file, strength, tone, upload, webm_bytes
from tests.rooms_support import join, live_space, make_host, seat

pytestmark = pytest.mark.django_db

Role = Participant.Role


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SPACES_RECORDING_DAYS = 30
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def room():
    host = make_host(display_name="Ada Host")
    space = live_space(host)
    join(space, host)
    listener, _ = join(space)
    return space, host, listener


def recorded_space(seconds: float = 6.0, *, hz: float = 440.0):
    """A Space recorded for `seconds` of real audio, ended and processed."""
    host = make_host(display_name="Ada Host")
    space = live_space(host)
    join(space, host)
    service.recording_toggle(space=space, by=host, on=True)
    upload(space, host, webm_bytes(tone(seconds, hz)))
    space = services.space_end(space=space, by=host)
    # The test recorded for a moment of wall time; say it covered the audio it uploaded.
    Recording.objects.filter(space=space).update(spans=[[0.0, seconds]])
    processing.recording_process(recording_id=space.recording.pk)
    space.recording.refresh_from_db()
    return space, host


# --- on and off -------------------------------------------------------------------------------------


def test_host_turns_recording_on_and_everyone_sees_rec(room, django_capture_on_commit_callbacks):
    space, host, listener = room
    assert space_snapshot(space=space, viewer=listener)["space"]["recording"] is False
    with django_capture_on_commit_callbacks(execute=True):
        service.recording_toggle(space=space, by=host, on=True)
    assert space_snapshot(space=space, viewer=listener)["space"]["recording"] is True
    recording = Recording.objects.get(space=space)
    assert recording.state == Recording.State.CAPTURING
    assert len(recording.spans) == 1 and recording.spans[0][1] is None
    service.recording_toggle(space=space, by=host, on=False)
    recording.refresh_from_db()
    assert recording.spans[0][1] is not None
    assert space_snapshot(space=space, viewer=listener)["space"]["recording"] is False


def test_cohost_may_record_but_speakers_and_listeners_may_not(room):
    space, host, listener = room
    cohost, _ = join(space)
    speaker, _ = join(space)
    seat(space, cohost, Role.COHOST)
    seat(space, speaker, Role.SPEAKER)
    for person in (speaker, listener):
        with pytest.raises(services.RoomForbidden):
            service.recording_toggle(space=space, by=person, on=True)
    assert not Space.objects.get(pk=space.pk).recording_on
    service.recording_toggle(space=space, by=cohost, on=True)
    assert Space.objects.get(pk=space.pk).recording_on


def test_recording_set_before_going_live_starts_with_the_space():
    host = make_host()
    space = space_schedule(host=host, title="Later", scheduled_for=timezone.now() + dt.timedelta(hours=2))
    client = Client()
    client.force_login(host)
    client.post(f"/spaces/{space.pk}/recording/", {"on": "1"})
    assert Space.objects.get(pk=space.pk).recording_on
    assert "Will record" in client.get(f"/spaces/{space.pk}/scheduled/").content.decode()
    assert not Recording.objects.filter(space=space).exists()  # nothing captured before it starts
    services.space_start(space=space, by=host)
    recording = Recording.objects.get(space=space)
    [[start, end]] = recording.spans
    assert start < 0.5 and end is None


def test_recording_cannot_be_turned_on_after_the_end(room):
    space, host, _ = room
    services.space_end(space=space, by=host)
    with pytest.raises(services.NotLive):
        service.recording_toggle(space=space, by=host, on=True)


def test_the_consent_notice_is_on_the_space_page_while_recording(room, client):
    space, host, listener = room
    service.recording_toggle(space=space, by=host, on=True)
    client.force_login(listener)
    page = client.get(space.get_absolute_url()).content.decode()
    assert "This Space is being recorded" in page


# --- the capture --------------------------------------------------------------------------------------


def test_only_the_host_uploads_chunks_and_a_retry_is_kept_once(room):
    space, host, listener = room
    service.recording_toggle(space=space, by=host, on=True)
    with pytest.raises(services.RoomForbidden):
        service.recording_chunk_save(space=space, by=listener, session="sessionA1", seq=0, data=b"x")
    service.recording_chunk_save(space=space, by=host, session="sessionA1", seq=0, data=b"abc")
    service.recording_chunk_save(space=space, by=host, session="sessionA1", seq=0, data=b"abc")
    assert RecordingChunk.objects.filter(recording__space=space).count() == 1


@pytest.mark.parametrize(
    ("session", "seq", "data", "status"),
    [
        ("short", 0, b"x", 400),
        ("sessionA1", 0, b"", 400),
        ("sessionA1", 0, b"x" * (service.CHUNK_MAX_BYTES + 1), 413),
    ],
)
def test_bad_chunks_get_a_clear_answer_and_store_nothing(room, session, seq, data, status):
    space, host, _ = room
    service.recording_toggle(space=space, by=host, on=True)
    client = Client()
    client.force_login(host)
    response = client.post(
        f"/spaces/{space.pk}/recording/chunks/{session}/{seq}/",
        data=data,
        content_type="application/octet-stream",
    )
    assert response.status_code == status
    assert response.json()["message"]
    assert not RecordingChunk.objects.exists()


def test_chunks_are_refused_when_nothing_is_recording(room):
    space, host, _ = room
    client = Client()
    client.force_login(host)
    response = client.post(
        f"/spaces/{space.pk}/recording/chunks/sessionA1/0/",
        data=b"abc",
        content_type="application/octet-stream",
    )
    assert response.status_code == 409


def test_the_largest_chunk_is_accepted(room):
    space, host, _ = room
    service.recording_toggle(space=space, by=host, on=True)
    data = b"x" * service.CHUNK_MAX_BYTES
    service.recording_chunk_save(space=space, by=host, session="sessionA1", seq=0, data=data)
    assert RecordingChunk.objects.get().size == service.CHUNK_MAX_BYTES


# --- processing --------------------------------------------------------------------------------------


def test_the_end_makes_a_normalised_replay_in_opus_and_aac():
    space, _ = recorded_space(6.0)
    recording = space.recording
    assert recording.state == Recording.State.READY
    assert abs(recording.duration_seconds - 6.0) < 0.1
    assert recording.web_audio.name.endswith(".opus") and recording.podcast_audio.name.endswith(".m4a")
    for field, size in (
        (recording.web_audio, recording.web_size),
        (recording.podcast_audio, recording.podcast_size),
    ):
        data = default_storage.open(field.name).read()
        assert len(data) == size
        audio = decode_file(data)
        assert abs(len(audio) / processing.RATE - 6.0) < 0.15
        assert strength(audio, 440) > 0.8
        assert abs(processing.loudness(audio) - processing.LOUDNESS_TARGET) < 1.5
    assert len(recording.waveform) == processing.WAVEFORM_BARS
    assert max(recording.waveform) == 1.0


def test_a_reload_starts_a_new_session_and_both_are_kept(room):
    space, host, _ = room
    service.recording_toggle(space=space, by=host, on=True)
    upload(space, host, webm_bytes(tone(3, 440)), session="sessionA1")
    upload(space, host, webm_bytes(tone(2, 660)), session="sessionB2")
    services.space_end(space=space, by=host)
    recording = processing.recording_process(recording_id=Recording.objects.get(space=space).pk)
    assert abs(recording.duration_seconds - 5.0) < 0.1
    audio = decode_file(default_storage.open(recording.web_audio.name).read())
    first, second = audio[: 3 * processing.RATE], audio[3 * processing.RATE :]
    assert strength(first, 440) > 0.8 and strength(second, 660) > 0.8


def test_a_capture_cut_off_mid_chunk_still_becomes_a_replay(room):
    """The browser or the server died: the last chunk is half there and later ones never came."""
    space, host, _ = room
    service.recording_toggle(space=space, by=host, on=True)
    data = webm_bytes(tone(20, 440))
    cut = data[: int(len(data) * 0.75)]
    upload(space, host, cut, pieces=6)
    services.space_end(space=space, by=host)
    recording = processing.recording_process(recording_id=Recording.objects.get(space=space).pk)
    assert recording.state == Recording.State.READY
    assert 15 - 10 <= recording.duration_seconds <= 15.5


def test_muted_stretches_stay_silent():
    silence_then_tone = np.concatenate([np.zeros(3 * processing.RATE, np.float32), tone(3, 660)])
    out = processing.normalise(silence_then_tone.copy())
    assert np.max(np.abs(out[: 3 * processing.RATE])) == 0
    assert np.max(np.abs(out)) <= processing.PEAK_CEILING + 1e-6


def test_nothing_captured_is_a_failed_recording_not_a_replay(room, client):
    space, host, _ = room
    service.recording_toggle(space=space, by=host, on=True)
    services.space_end(space=space, by=host)
    recording = Recording.objects.get(space=space)
    assert processing.recording_process(recording_id=recording.pk) is None
    recording.refresh_from_db()
    assert recording.state == Recording.State.FAILED and recording.error
    assert client.get(f"/spaces/{space.pk}/replay/").status_code == 404


def test_a_janus_wav_whose_writer_was_killed_is_read_to_its_end(tmp_path):
    import struct

    samples = (tone(2, 440) * 32767).astype("<i2").tobytes()
    header = (
        b"RIFF" + struct.pack("<I", 0) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    )
    path = tmp_path / "cut.wav"
    path.write_bytes(header + b"data" + struct.pack("<I", 0) + samples)  # sizes never written
    audio = processing.read_wav_tolerant(path)
    assert abs(len(audio) / processing.RATE - 2 * 48000 / 16000) < 0.01  # 16 kHz samples at 48 kHz
    assert strength(audio, 440 / 3) > 0.8


# --- chapters and captions ------------------------------------------------------------------------------


def test_the_timeline_skips_what_was_not_recorded():
    recording = Recording(spans=[[10.0, 20.0], [30.0, 35.0]])
    timeline = Timeline.of(recording)
    assert timeline.at(5) is None
    assert timeline.at(10) == 0 and timeline.at(19.5) == 9.5
    assert timeline.at(25) is None
    assert timeline.at(31) == 11


def test_chapters_follow_the_speakers(room):
    space, host, listener = room
    seat(space, listener, Role.SPEAKER)
    Participant.objects.filter(space=space).update(muted=False)
    service.recording_toggle(space=space, by=host, on=True)
    services.speaking_report(space=space, by=host, on=True)
    services.speaking_report(space=space, by=listener, on=True)
    services.speaking_report(space=space, by=listener, on=True)  # the same speaker: no new chapter
    assert SpeakerMark.objects.filter(space=space).count() == 2
    recording = Recording.objects.get(space=space)
    recording.spans = [[0.0, 60.0]]
    SpeakerMark.objects.filter(space=space, user=listener).update(at=30.0)
    assert replay_chapters(recording=recording) == [
        {"start": 0.0, "name": host.name},
        {"start": 30.0, "name": listener.name},
    ]


# --- deletion and retention --------------------------------------------------------------------------


def test_the_host_deletes_a_recording_and_its_files_go(django_capture_on_commit_callbacks):
    space, host = recorded_space(3)
    names = [space.recording.web_audio.name, space.recording.podcast_audio.name]
    assert all(default_storage.exists(n) for n in names)
    client = Client()
    client.force_login(host)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/spaces/{space.pk}/recording/delete/")
    assert not Recording.objects.filter(space=space).exists()
    assert not any(default_storage.exists(n) for n in names)
    assert client.get(f"/spaces/{space.pk}/replay/").status_code == 404
    assert client.get(f"/spaces/{space.pk}/replay/audio.opus").status_code == 404
    assert "Replay" not in client.get(space.get_absolute_url()).content.decode()


def test_only_the_host_deletes_a_recording():
    space, _ = recorded_space(2)
    with pytest.raises(services.RoomForbidden):
        service.recording_delete(space=space, by=UserFactory())
    assert Recording.objects.filter(space=space).exists()


def test_deleting_while_live_stops_recording(room):
    space, host, _ = room
    service.recording_toggle(space=space, by=host, on=True)
    service.recording_delete(space=space, by=host)
    assert not Space.objects.get(pk=space.pk).recording_on
    assert not Recording.objects.filter(space=space).exists()


def test_the_sweep_deletes_recordings_past_their_days(settings, django_capture_on_commit_callbacks):
    space, _ = recorded_space(2)
    name = space.recording.web_audio.name
    ended = space.ended_at
    with django_capture_on_commit_callbacks(execute=True):
        assert service.recording_sweep(now=ended + dt.timedelta(days=30) - dt.timedelta(seconds=1)) == 0
        settings.SPACES_RECORDING_DAYS = 0
        assert service.recording_sweep(now=ended + dt.timedelta(days=365)) == 0
        settings.SPACES_RECORDING_DAYS = 30
        assert service.recording_sweep(now=ended + dt.timedelta(days=30, seconds=1)) == 1
    assert not Recording.objects.exists()
    assert not default_storage.exists(name)


# --- the replay page and its files ------------------------------------------------------------------------


def test_the_replay_page_has_the_player_captions_and_chapters(django_assert_max_num_queries):
    space, host = recorded_space(4)
    CaptionLine.objects.create(
        space=space, speaker=host, speaker_name=host.name, start=1.0, end=2.5, text="Hello all"
    )
    SpeakerMark.objects.create(space=space, user=host, name=host.name, at=0.0)
    client = Client()
    with django_assert_max_num_queries(12):
        page = client.get(f"/spaces/{space.pk}/replay/?t=2")
    body = page.content.decode()
    assert page.status_code == 200
    assert 'data-start="2"' in body and "captions.vtt" in body and "1.5×" in body
    assert space.title in body and host.name in body
    vtt = client.get(f"/spaces/{space.pk}/replay/captions.vtt")
    assert vtt["Content-Type"].startswith("text/vtt")
    assert "Hello all" in vtt.content.decode()
    chapters = client.get(f"/spaces/{space.pk}/replay/chapters.json").json()
    assert chapters["chapters"][0] == {"startTime": 0.0, "title": host.name}
    assert client.post(f"/spaces/{space.pk}/replay/played/").status_code == 204
    assert Recording.objects.get(space=space).play_count == 1


def test_the_ended_space_page_and_the_profile_link_the_replay():
    space, host = recorded_space(2)
    client = Client()
    replay_url = f"/spaces/{space.pk}/replay/"
    assert replay_url in client.get(space.get_absolute_url()).content.decode()
    assert replay_url in client.get(host.get_absolute_url()).content.decode()


def test_the_audio_answers_ranges_with_206():
    space, _ = recorded_space(3)
    data = default_storage.open(space.recording.web_audio.name).read()
    client = Client()
    url = f"/spaces/{space.pk}/replay/audio.opus"
    whole = client.get(url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    assert b"".join(whole.streaming_content) == data
    middle = client.get(url, HTTP_RANGE="bytes=100-199")
    assert middle.status_code == 206
    assert middle["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert b"".join(middle.streaming_content) == data[100:200]
    tail = client.get(url, HTTP_RANGE="bytes=-10")
    assert b"".join(tail.streaming_content) == data[-10:]
    open_ended = client.get(url, HTTP_RANGE=f"bytes={len(data) - 5}-")
    assert b"".join(open_ended.streaming_content) == data[-5:]
    assert client.get(url, HTTP_RANGE=f"bytes={len(data)}-").status_code == 416
    assert client.get(url, HTTP_RANGE="bytes=abc").status_code == 416
    assert client.get(f"/spaces/{space.pk}/replay/audio.mp3").status_code == 404


# --- tickets ------------------------------------------------------------------------------------------


def _ticketed_recorded(holder=None):
    from tests.test_ticketing_entry import give_ticket, live_ticketed_space

    space = live_ticketed_space()
    host = space.host
    join(space, host)
    if holder is not None:
        give_ticket(space, holder)
    service.recording_toggle(space=space, by=host, on=True)
    upload(space, host, webm_bytes(tone(2, 440)))
    services.space_end(space=space, by=host)
    processing.recording_process(recording_id=Recording.objects.get(space=space).pk)
    return Space.objects.get(pk=space.pk), host


def test_a_ticketed_replay_is_for_ticket_holders_only():
    holder = UserFactory()
    space, host = _ticketed_recorded(holder)
    url = f"/spaces/{space.pk}/replay/audio.opus"
    assert Client().get(url).status_code == 403
    stranger = Client()
    stranger.force_login(UserFactory())
    assert stranger.get(url).status_code == 403
    assert stranger.get(f"/spaces/{space.pk}/replay/").status_code == 403
    assert stranger.get(f"/spaces/{space.pk}/replay/captions.vtt").status_code == 403
    member = Client()
    member.force_login(holder)
    assert member.get(url).status_code == 200
    assert member.get(url, HTTP_RANGE="bytes=0-9").status_code == 206


# --- the podcast feed ---------------------------------------------------------------------------------


def test_the_podcast_feed_parses_with_true_lengths_and_leaves_out_ticketed_and_deleted():
    space, host = recorded_space(3)
    other, _ = recorded_space(2)
    Space.objects.filter(pk=other.pk).update(host=host)
    hidden, _ = recorded_space(2)
    Space.objects.filter(pk=hidden.pk).update(host=host)  # never put in the podcast
    for s in (space, other):
        service.recording_podcast_set(space=Space.objects.get(pk=s.pk), by=host, on=True)
    CaptionLine.objects.create(
        space=space, speaker=host, speaker_name=host.name, start=0.5, end=1.5, text="Hi"
    )
    ticketed, ticket_host = _ticketed_recorded()
    Space.objects.filter(pk=ticketed.pk).update(host=host)
    Recording.objects.filter(space=ticketed).update(in_podcast=True)

    client = Client()
    first = client.get(f"/u/{host.username}/podcast.xml")
    assert first["Content-Type"].startswith("application/rss+xml")
    feed = feedparser.parse(first.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "rss20"
    titles = {entry.title for entry in feed.entries}
    assert titles == {space.title, other.title} - set() and len(feed.entries) == 2
    by_link = {entry.link.rsplit("/spaces/", 1)[1].split("/")[0]: entry for entry in feed.entries}
    entry = by_link[str(space.pk)]
    enclosure = entry.enclosures[0]
    recording = Recording.objects.get(space=space)
    body = b"".join(client.get(enclosure.href).streaming_content)
    assert int(enclosure.length) == len(body) == recording.podcast_size
    assert enclosure.type == "audio/mp4"
    assert entry.id == f"urn:uuid:{recording.guid}"
    assert entry.itunes_duration == "00:00:03"
    xml = first.content.decode()
    assert f'podcast:transcript url="http://testserver/spaces/{space.pk}/replay/captions.vtt"' in xml
    assert "podcast:chapters" in xml
    # Stable: the same GUIDs on the next fetch; a deleted replay leaves the feed.
    service.recording_delete(space=Space.objects.get(pk=other.pk), by=host)
    again = feedparser.parse(client.get(f"/u/{host.username}/podcast.xml").content)
    assert [e.id for e in again.entries] == [entry.id]


def test_seed_demo_leaves_a_space_with_a_replay():
    call_command("seed_demo", verbosity=0)
    recording = Recording.objects.get(state=Recording.State.READY)
    assert recording.space.state == Space.State.ENDED
    assert recording.duration_seconds > 5
    assert Client().get(f"/spaces/{recording.space_id}/replay/").status_code == 200


# --- the socket -----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_recording_toggle_frame_tells_everyone_and_bad_frames_change_nothing():
    from channels.db import database_sync_to_async as db

    from tests.rooms_support import connect

    host = await db(make_host)()
    space = await db(live_space)(host)
    listener = await db(UserFactory)()
    h = await connect(space, host)
    listener_peer = await connect(space, listener)
    await h.send(type="recording_toggle", on="yes")
    bad = await h.until("error")
    assert bad["code"] == "bad_field" and "true or false" in bad["message"]
    refused = await listener_peer.ask("recording_toggle", on=True)
    assert refused["type"] == "error" and refused["code"] == "forbidden"
    assert not await db(lambda: Space.objects.get(pk=space.pk).recording_on)()
    assert (await h.ask("recording_toggle", on=True))["type"] == "ok"
    event = await listener_peer.until("recording_toggled")
    assert event["on"] is True
    assert (await listener_peer.ask("resync"))["space"]["recording"] is True
    await h.close()
    await listener_peer.close()


def test_the_waveform_follows_loudness_not_peaks():
    """A minute of speech-like bursts (full-scale clicks over a quiet hum) and then a silent
    minute: the loud half's bars stand by how much sound there is, the silent half's are zero."""
    rate = processing.RATE
    t = np.arange(60 * rate) / rate
    hum = 0.05 * np.sin(2 * np.pi * 220 * t)
    hum[:: rate // 2] = 1.0  # a peak in every slice: a peak-based waveform would be flat
    loud = 0.5 * np.sin(2 * np.pi * 220 * t[: 10 * rate])
    samples = np.concatenate([loud, hum[10 * rate :], np.zeros(60 * rate)]).astype(np.float32)
    bars = processing.waveform(samples, bars=12)
    assert bars[0] == 1.0  # the loudest slice
    assert all(0.05 < bar < 0.25 for bar in bars[1:6]), bars  # the hum: about 0.036 / 0.354
    assert bars[6:] == [0.0] * 6, bars
