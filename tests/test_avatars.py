"""Avatars: only real JPEG/PNG/WebP up to 5 MB; metadata stripped; two square sizes."""

import io
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def image_bytes(fmt="JPEG", size=(400, 300), exif=True) -> bytes:
    img = Image.new("RGB", size, (120, 40, 200))
    buf = io.BytesIO()
    kwargs = {}
    if exif and fmt in ("JPEG", "WEBP", "PNG"):
        ex = Image.Exif()
        ex[0x010F] = "SecretCameraMaker"  # Make
        ex[0x8825] = {2: (1.0, 2.0, 3.0)}  # GPS
        kwargs["exif"] = ex.tobytes()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def png_bomb(width=50_000, height=50_000) -> bytes:
    """A tiny PNG whose header claims 2.5 gigapixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def upload(client, name, data, content_type="image/jpeg"):
    return client.post(
        reverse("profile_edit"),
        {
            "display_name": "",
            "bio": "",
            "time_zone": "UTC",
            "avatar": SimpleUploadedFile(name, data, content_type),
        },
    )


@pytest.fixture
def signed_in(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    user = UserFactory()
    client.force_login(user)
    return user


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepted_formats_become_two_square_crops_without_metadata(client, signed_in, fmt):
    response = upload(client, f"me.{fmt.lower()}", image_bytes(fmt))
    assert response.status_code == 302, response.content.decode()[:500]
    signed_in.refresh_from_db()
    with Image.open(signed_in.avatar.path) as large, Image.open(signed_in.avatar_small.path) as small:
        assert large.size == (256, 256)
        assert small.size == (64, 64)
        assert not large.getexif()
        assert "exif" not in large.info
    with open(signed_in.avatar.path, "rb") as stored:
        assert b"SecretCameraMaker" not in stored.read()


def test_a_renamed_text_file_is_refused(client, signed_in):
    response = upload(client, "cat.jpg", b"this is not a picture, just text\n" * 20)
    assert response.status_code == 200
    assert "not a picture we can read" in response.content.decode()
    signed_in.refresh_from_db()
    assert not signed_in.avatar


def test_a_decompression_bomb_is_refused(client, signed_in):
    response = upload(client, "bomb.png", png_bomb(), "image/png")
    assert response.status_code == 200
    assert "too many pixels" in response.content.decode()


def test_a_truncated_image_is_refused(client, signed_in):
    data = image_bytes("JPEG", size=(800, 800))
    response = upload(client, "cut.jpg", data[: len(data) // 2])
    assert response.status_code == 200
    assert "damaged or incomplete" in response.content.decode()


def test_a_gif_is_refused(client, signed_in):
    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, format="GIF")
    response = upload(client, "anim.gif", buf.getvalue(), "image/gif")
    assert "Upload a JPEG, PNG or WebP" in response.content.decode()


def test_a_file_over_5_mb_is_refused(client, signed_in):
    response = upload(client, "big.jpg", b"\xff\xd8" + b"0" * (5 * 1024 * 1024))
    assert response.status_code == 200
    assert "larger than 5 MB" in response.content.decode()


def test_exactly_5_mb_is_not_refused_for_size(client, signed_in, settings):
    # A real PNG padded to exactly 5 MB with an ancillary chunk is accepted.
    data = image_bytes("PNG", exif=False)
    pad = 5 * 1024 * 1024 - len(data) - 12
    body = b"x" * pad
    chunk = struct.pack(">I", len(body)) + b"teXt" + body + struct.pack(">I", zlib.crc32(b"teXt" + body))
    data = data[:-12] + chunk + data[-12:]
    assert len(data) == 5 * 1024 * 1024
    response = upload(client, "exact.png", data, "image/png")
    assert response.status_code == 302


def test_replacing_an_avatar_keeps_the_new_files_and_deletes_the_old(
    client, signed_in, tmp_path, django_capture_on_commit_callbacks
):
    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            assert upload(client, f"me{n}.jpg", image_bytes()).status_code == 302
        signed_in.refresh_from_db()
        assert (tmp_path / signed_in.avatar.name).is_file()
        assert (tmp_path / signed_in.avatar_small.name).is_file()
        kept = sorted(p.name for p in tmp_path.rglob("*.webp"))
        assert kept == sorted(
            name.rsplit("/", 1)[-1] for name in (signed_in.avatar.name, signed_in.avatar_small.name)
        )


def test_a_picture_over_the_pixel_budget_is_refused_from_its_header(client, signed_in):
    # 4000 x 3500 = 14 MP claimed by a header of a few hundred bytes.
    response = upload(client, "big.png", png_bomb(4000, 3500), "image/png")
    assert response.status_code == 200
    assert "at most 12 megapixels" in response.content.decode()
    signed_in.refresh_from_db()
    assert not signed_in.avatar


def test_a_picture_just_under_the_pixel_budget_is_accepted(client, signed_in):
    img = Image.new("RGB", (3460, 3460), (10, 200, 30))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    response = upload(client, "near.png", buf.getvalue(), "image/png")
    assert response.status_code == 302
    signed_in.refresh_from_db()
    with Image.open(signed_in.avatar.path) as large:
        assert large.size == (256, 256)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_and_still_cropped_well(client, signed_in):
    response = upload(client, "photo.jpg", image_bytes("JPEG", size=(3000, 2000)))
    assert response.status_code == 302
    signed_in.refresh_from_db()
    with Image.open(signed_in.avatar.path) as large:
        assert large.size == (256, 256)
        assert large.convert("RGB").getpixel((128, 128)) == pytest.approx((120, 40, 200), abs=8)


def test_when_every_decode_slot_is_busy_an_upload_waits_then_is_told_to_retry(client, signed_in, settings):
    from accounts.avatars import decode_slots

    settings.SPACES_AVATAR_WAIT_SECONDS = 1
    slots = decode_slots()
    taken = 0
    while slots.acquire(blocking=False):  # another request is decoding in every slot
        taken += 1
    try:
        response = upload(client, "me.jpg", image_bytes())
    finally:
        for _ in range(taken):
            slots.release()
    assert response.status_code == 200 and "busy processing other pictures" in response.content.decode()
    assert upload(client, "me.jpg", image_bytes()).status_code == 302


def test_a_body_over_the_request_cap_is_413_before_any_view(client, signed_in, settings):
    settings.SPACES_MAX_REQUEST_BYTES = 1024 * 1024
    response = client.post(
        reverse("profile_edit"), data=b"x" * (1024 * 1024 + 1), content_type="application/octet-stream"
    )
    assert response.status_code == 413
    assert "limited to 1 MB" in response.content.decode()


async def test_under_asgi_an_oversized_body_is_refused_before_it_is_read(settings):
    from channels.testing import HttpCommunicator

    from spaces_project.asgi import application

    declared = settings.SPACES_MAX_REQUEST_BYTES + 1
    # Only the headers arrive: the answer must not wait for (or read) the 6 MB body.
    communicator = HttpCommunicator(
        application,
        "POST",
        "/settings/profile/",
        body=b"",
        headers=[(b"host", b"127.0.0.1"), (b"content-length", str(declared).encode())],
    )
    response = await communicator.get_response(timeout=5)
    assert response["status"] == 413
    assert b"limited to 6 MB" in response["body"]
