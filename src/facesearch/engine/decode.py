"""Turn untrusted image bytes into an upright RGB array, or a typed error that says what was wrong.

Why so careful: images arrive from S3 uploads and API callers we don't control. A 20000×20000 PNG is a few
kilobytes but decodes to 1.2 GB (decompression bomb), phones store rotation in EXIF instead of pixels, and
scanners emit CMYK or 16-bit files. The header is checked before any pixel is decoded.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facesearch.errors import ImageTooLargeException, InvalidImageFormatException

# Rekognition accepts 5 MB of raw bytes (15 MB from S3); we default to the S3 limit for both.
MAX_IMAGE_BYTES = 15 * 1024 * 1024
# 80 megapixels: above any phone camera, far below a decompression bomb.
MAX_IMAGE_PIXELS = 80_000_000
# JPEGs larger than this on their long side are decoded at 1/2, 1/4 or 1/8 scale by the JPEG decoder itself
# (DCT scaling: several times faster than decoding full size and resizing). A face that matters in a 24 MP
# photo is hundreds of pixels wide; alignment shrinks it to 150 px anyway.
DECODE_MAX_SIDE = 2048
# WEBP beyond Rekognition (JPEG/PNG only): phones and web galleries produce it, faces-dev has one.
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})


@dataclass(frozen=True)
class DecodedImage:
    """Upright uint8 RGB pixels plus what we learned while decoding (for audit and response metadata)."""

    rgb: np.ndarray
    format: str
    sha256: str
    exif_rotated: bool

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def decode_image(
    data: bytes,
    *,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
    formats: frozenset[str] = SUPPORTED_FORMATS,
    max_side: int | None = DECODE_MAX_SIDE,
) -> DecodedImage:
    """Decode JPEG/PNG/WEBP bytes to upright RGB; raise InvalidImageFormatException / ImageTooLargeException.

    ``max_side``: JPEGs whose long side exceeds it may come back reduced (never below ``max_side``); callers
    use ratios (Rekognition's BoundingBox), so results don't depend on it. None decodes at full size.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidImageFormatException(f"image must be bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise InvalidImageFormatException("image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageTooLargeException(f"image is {len(data)} bytes; the limit is {max_bytes} bytes")
    digest = hashlib.sha256(data).hexdigest()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise InvalidImageFormatException("bytes are not a recognised image (expected JPEG, PNG or WEBP)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeException(f"image dimensions are too large: {exc}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImageFormatException(f"image header is unreadable: {exc}") from exc

    if image.format not in formats:
        raise InvalidImageFormatException(
            f"image format {image.format or 'unknown'} is not supported; use one of {sorted(formats)}"
        )
    fmt = str(image.format)
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeException(
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels} pixels"
        )
    try:
        if max_side and image.format == "JPEG" and max(width, height) > max_side:
            shrink = max_side / max(width, height)
            image.draft("RGB", (int(width * shrink) + 1, int(height * shrink) + 1))
        image.load()
        rotated = _orientation(image) not in (None, 1)
        if rotated:
            image = ImageOps.exif_transpose(image)  # type: ignore[assignment]  # without a rotation it would only copy the pixels
        rgb = _to_rgb(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InvalidImageFormatException(f"image data is corrupt or truncated: {exc}") from exc
    return DecodedImage(rgb=rgb, format=fmt, sha256=digest, exif_rotated=bool(rotated))


def _orientation(image: Image.Image) -> int | None:
    try:
        return image.getexif().get(0x0112)
    except Exception:  # a broken EXIF block must not fail an otherwise good image
        return None


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow mode → contiguous uint8 HxWx3 RGB."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: Pillow's convert("L") clips instead of scaling, so scale by the real range.
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        gray = np.clip(values * (255.0 / top), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        # Composite transparent pixels over white: a face cut-out on transparency reads like a passport photo.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")  # L, P, CMYK (Pillow handles Adobe's inverted CMYK), YCbCr, F, 1
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
