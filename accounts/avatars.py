"""Avatar processing: decide whether an upload is a real image we accept, then re-encode it.

Re-encoding from pixels (never copying the original bytes) is what strips EXIF, GPS
and any other metadata, and what turns a polyglot file into a plain image.
"""

from __future__ import annotations

import io
import uuid
import warnings

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from PIL import Image, ImageOps, UnidentifiedImageError

from . import rules

ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP"}
# Anything larger than this many pixels is treated as a decompression bomb.
MAX_PIXELS = 40_000_000


def process_avatar(upload) -> dict[int, ContentFile]:
    """Return {size: ContentFile} square WebP crops for each size in rules.AVATAR_SIZES.

    Raises ValidationError with a message meant for the person uploading.
    """
    if upload.size > rules.AVATAR_MAX_BYTES:
        mb = rules.AVATAR_MAX_BYTES // (1024 * 1024)
        raise ValidationError(f"That file is larger than {mb} MB. Choose a smaller picture.")
    data = upload.read()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format
                width, height = probe.size
                if fmt not in ACCEPTED_FORMATS:
                    raise ValidationError("Upload a JPEG, PNG or WebP picture.")
                if width * height > MAX_PIXELS:
                    raise ValidationError("That picture has too many pixels. Use one under 40 megapixels.")
                probe.verify()
            # verify() leaves the image unusable; open again and decode every pixel,
            # which is where a truncated file shows itself.
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                image = ImageOps.exif_transpose(image)
                image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError("That picture has too many pixels. Use one under 40 megapixels.")
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
