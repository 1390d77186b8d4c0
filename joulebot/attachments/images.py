"""Images from users, made safe for a model: the real format from the bytes, bombs refused,
metadata (EXIF with its GPS position) dropped, downscaled to a pixel budget, re-encoded.

Re-encoding is what strips the metadata: Pillow writes no EXIF, XMP or comments unless asked,
so the model (and anyone reading Ollama's logs) gets pixels only. The orientation EXIF carried
is applied to the pixels first, so a phone photo does not arrive on its side.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from typing import Protocol

from PIL import Image, ImageOps, UnidentifiedImageError

from joulebot.attachments.parts import AttachmentError, ImageInput

READABLE = ("JPEG", "PNG", "WEBP", "GIF", "BMP")  # formats Pillow may parse from a stranger
# Beyond this many pixels before decoding the image is refused as a decompression bomb: Pillow's
# own limit (it warns above it and raises above twice it); checked from the header, before a
# single pixel is decoded.
BOMB_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
MAX_ASPECT = 20  # a 1×100,000 strip downscaled would be 0 pixels wide: no model sees that
# Vision encoders cut images into patches: Qwen2.5-VL's are 28 px (Ollama's runner panics on a side
# shorter than one), LLaVA's and Gemma's 14 px. A smaller image is enlarged until its short side has
# one 28 px patch; that wins over MAX_IMAGE_PIXELS (which only a tiny budget and a 1:20 strip meet).
MIN_SIDE = 28
JPEG_QUALITY = 90


@dataclass(frozen=True)
class ImageLimits:
    max_images: int  # per message
    max_bytes: int  # each, as received
    max_pixels: int  # each, after downscaling


def read_images(files: list[tuple[str, bytes]], limits: ImageLimits) -> list[ImageInput]:
    """Every image of one message, normalised; AttachmentError (one line) for the first bad one."""
    check_count(len(files), limits)
    return [read_image(name, raw, limits) for name, raw in files]


def read_image(name: str, raw: bytes, limits: ImageLimits) -> ImageInput:
    """One image, normalised (see the module); AttachmentError says in one line why not."""
    check_size(name, len(raw), limits)
    try:
        with Image.open(io.BytesIO(raw), formats=READABLE) as image:
            _check_header(name, image)
            image.load()
            picture = ImageOps.exif_transpose(image)
    except AttachmentError:
        raise
    except Image.DecompressionBombError:
        raise AttachmentError(f"{name} is refused: it would decode to too many pixels") from None
    except UnidentifiedImageError:
        raise AttachmentError(f"{name} is not an image joulebot reads ({', '.join(READABLE)})") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise AttachmentError(f"{name} is not a complete image ({_short(exc)})") from None
    return _normalised(name, picture, image.format or "", limits.max_pixels)


def check_count(count: int, limits: ImageLimits) -> None:
    """Before reading any: more than MAX_IMAGES in one message is refused."""
    if count > limits.max_images:
        raise AttachmentError(f"at most {limits.max_images} images per message (this one has {count})")


def check_size(name: str, size: int, limits: ImageLimits) -> None:
    """Before downloading or decoding: an image over MAX_IMAGE_BYTES is refused."""
    if size > limits.max_bytes:
        raise AttachmentError(f"{name} is {_mb(size)}; images are taken up to {_mb(limits.max_bytes)}")


def _check_header(name: str, image: Image.Image) -> None:
    width, height = image.size
    if width * height > BOMB_PIXELS:
        raise AttachmentError(f"{name} is refused: {width}×{height} would decode to too many pixels")
    if width < 1 or height < 1 or max(width, height) > MAX_ASPECT * min(width, height):
        raise AttachmentError(f"{name} is {width}×{height}: images are taken up to a 1:{MAX_ASPECT} aspect ratio")
    frames = int(getattr(image, "n_frames", 1))
    if frames > 1:  # refused, not cut to its first frame: the answer would be about a frame nobody chose
        raise AttachmentError(f"{name} is animated ({frames} frames): send a single still image")


def _normalised(name: str, image: Image.Image, source_format: str, max_pixels: int) -> ImageInput:
    width, height = image.size
    downscaled = width * height > max_pixels
    scale = (max_pixels / (width * height)) ** 0.5 if downscaled else 1.0
    scale = max(scale, MIN_SIDE / min(width, height))
    if scale != 1.0:
        size = (max(MIN_SIDE, int(width * scale)), max(MIN_SIDE, int(height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    out = io.BytesIO()
    if alpha:
        image.convert("RGBA").save(out, format="PNG", optimize=True)
    else:
        image.convert("RGB").save(out, format="JPEG", quality=JPEG_QUALITY)
    data = out.getvalue()
    return ImageInput(
        name=name,
        data=base64.b64encode(data).decode("ascii"),
        media_type="image/png" if alpha else "image/jpeg",
        width=image.width,
        height=image.height,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        source_format=source_format,
        downscaled=downscaled,
    )


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _short(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120]


class _ImageSettings(Protocol):
    max_images: int
    max_image_bytes: int
    max_image_pixels: int


def image_limits(settings: _ImageSettings) -> ImageLimits:
    """The limits MAX_IMAGES, MAX_IMAGE_BYTES and MAX_IMAGE_PIXELS set."""
    return ImageLimits(settings.max_images, settings.max_image_bytes, settings.max_image_pixels)
