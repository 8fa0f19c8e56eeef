"""Avatar processing: decide whether an upload is a real image we accept, then re-encode it.

Re-encoding from pixels (never copying the original bytes) is what strips EXIF, GPS
and any other metadata, and what turns a polyglot file into a plain image.
"""

from __future__ import annotations

import io
import threading
import uuid
import warnings

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from PIL import Image, ImageOps, UnidentifiedImageError

from . import rules

ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP"}
# Decoding is where the memory goes: at most SPACES_AVATAR_PARALLEL at once in this process, so a
# few large uploads at the same moment queue instead of taking every page's memory and CPU.
_decode_slots: threading.BoundedSemaphore | None = None
_slots_lock = threading.Lock()


def decode_slots() -> threading.BoundedSemaphore:
    global _decode_slots
    with _slots_lock:
        if _decode_slots is None:
            _decode_slots = threading.BoundedSemaphore(max(1, settings.SPACES_AVATAR_PARALLEL))
        return _decode_slots


def _too_many_pixels() -> ValidationError:
    mp = rules.AVATAR_MAX_PIXELS // 1_000_000
    return ValidationError(f"That picture has too many pixels. Use one of at most {mp} megapixels.")


def process_avatar(upload) -> dict[int, ContentFile]:
    """Return {size: ContentFile} square WebP crops for each size in rules.AVATAR_SIZES.

    Raises ValidationError with a message meant for the person uploading.
    """
    if upload.size > rules.AVATAR_MAX_BYTES:
        mb = rules.AVATAR_MAX_BYTES // (1024 * 1024)
        raise ValidationError(f"That file is larger than {mb} MB. Choose a smaller picture.")
    if not decode_slots().acquire(timeout=settings.SPACES_AVATAR_WAIT_SECONDS):
        raise ValidationError("We're busy processing other pictures. Try again in a minute.")
    try:
        return _process(upload)
    finally:
        decode_slots().release()


def _process(upload) -> dict[int, ContentFile]:
    largest = max(rules.AVATAR_SIZES)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            upload.seek(0)
            # Image.open reads only the header: the size is known before any pixel is decoded.
            with Image.open(upload) as probe:
                fmt = probe.format
                width, height = probe.size
                if fmt not in ACCEPTED_FORMATS:
                    raise ValidationError("Upload a JPEG, PNG or WebP picture.")
                if width * height > rules.AVATAR_MAX_PIXELS:
                    raise _too_many_pixels()
                probe.verify()
            # verify() leaves the image unusable; open again and decode every pixel,
            # which is where a truncated file shows itself.
            upload.seek(0)
            with Image.open(upload) as image:
                if fmt == "JPEG":
                    # JPEG decodes straight to a smaller scale (1/2 … 1/8) when asked first.
                    image.draft("RGB", (largest * 2, largest * 2))
                image.load()
                # Shrink at once (a cheap box reduction keeping the short side at least twice the
                # largest crop), before the copies that rotating and converting make.
                factor = min(image.size) // (largest * 2)
                if factor >= 2:
                    image = image.reduce(factor)
                image = ImageOps.exif_transpose(image)
                image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels()
    except UnidentifiedImageError:
        raise ValidationError("That file is not a picture we can read. Upload a JPEG, PNG or WebP.")
    except (OSError, SyntaxError, ValueError):
        raise ValidationError(
            "That picture seems damaged or incomplete. Try saving it again and re-uploading."
        )

    side = min(image.size)
    square = ImageOps.fit(image, (side, side), method=Image.Resampling.LANCZOS)
    stem = uuid.uuid4().hex
    out: dict[int, ContentFile] = {}
    for size in rules.AVATAR_SIZES:
        resized = square.resize((size, size), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        resized.save(buffer, format="WEBP", quality=85, method=4)
        out[size] = ContentFile(buffer.getvalue(), name=f"{stem}-{size}.webp")
    return out
