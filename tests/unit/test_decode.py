"""Decoding untrusted image bytes: every bad input gets a typed, clear error; every odd-but-valid one decodes."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from facesearch.engine.decode import decode_image
from facesearch.errors import ImageTooLargeException, InvalidImageFormatException


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def gradient(width: int = 64, height: int = 48) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    arr = np.stack([np.tile(x, (height, 1))] * 3, axis=2)
    arr[:, :, 1] = 100
    return Image.fromarray(arr, "RGB")


def png_with_header(width: int, height: int) -> bytes:
    """A syntactically valid PNG whose header claims width×height (a decompression bomb's calling card)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_a_normal_jpeg_decodes_to_rgb_uint8_with_its_sha256():
    data = encode(gradient(), "JPEG")
    img = decode_image(data)
    assert img.rgb.shape == (48, 64, 3) and img.rgb.dtype == np.uint8
    assert img.format == "JPEG" and len(img.sha256) == 64 and not img.exif_rotated


def test_empty_bytes_are_rejected():
    with pytest.raises(InvalidImageFormatException, match="empty"):
        decode_image(b"")


def test_non_image_bytes_are_rejected():
    with pytest.raises(InvalidImageFormatException, match="not a recognised image"):
        decode_image(b"%PDF-1.7 this is not an image at all" * 10)


def test_corrupt_bytes_are_rejected():
    data = bytearray(encode(gradient(), "JPEG"))
    data[2:40] = b"\x00" * 38  # smash the JPEG headers
    with pytest.raises(InvalidImageFormatException):
        decode_image(bytes(data))


def test_truncated_jpeg_is_rejected_not_half_decoded():
    data = encode(gradient(640, 480), "JPEG")
    with pytest.raises(InvalidImageFormatException, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2])


def test_truncated_png_is_rejected():
    data = encode(gradient(640, 480), "PNG")
    with pytest.raises(InvalidImageFormatException):
        decode_image(data[: len(data) // 2])


def test_unsupported_format_is_named_in_the_error():
    with pytest.raises(InvalidImageFormatException, match="GIF"):
        decode_image(encode(gradient(), "GIF"))


def test_one_pixel_image_decodes():
    img = decode_image(encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"))
    assert img.rgb.shape == (1, 1, 3) and img.rgb[0, 0].tolist() == [10, 20, 30]


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(ImageTooLargeException, match="400000000 pixels"):
        decode_image(png_with_header(20000, 20000))


def test_pixel_limit_is_configurable():
    with pytest.raises(ImageTooLargeException, match="limit is 1000 pixels"):
        decode_image(encode(gradient(64, 48), "PNG"), max_pixels=1000)


def test_byte_limit_is_enforced():
    with pytest.raises(ImageTooLargeException, match="bytes"):
        decode_image(encode(gradient(), "PNG"), max_bytes=100)


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # pure red in CMYK
    img = decode_image(encode(cmyk, "JPEG", quality=95))
    r, g, b = img.rgb[16, 16].tolist()
    assert img.rgb.shape == (32, 32, 3) and r > 200 and g < 60 and b < 60


def test_png_with_alpha_is_composited_over_white():
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # fully transparent black
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    img = decode_image(encode(rgba, "PNG"))
    assert img.rgb[4, 4].tolist() == [255, 255, 255]
    assert img.rgb[0, 0].tolist() == [0, 0, 255]


def test_sixteen_bit_grayscale_png_is_scaled_not_clipped():
    arr = np.full((10, 10), 32768, dtype=np.uint16)  # mid-gray in 16 bit
    img = decode_image(encode(Image.fromarray(arr), "PNG"))
    assert 120 <= int(img.rgb[5, 5, 0]) <= 135 and img.rgb.shape == (10, 10, 3)


def test_grayscale_and_palette_images_become_rgb():
    for image in (Image.new("L", (5, 5), 77), Image.new("RGB", (5, 5), (1, 2, 3)).convert("P")):
        assert decode_image(encode(image, "PNG")).rgb.shape == (5, 5, 3)


def test_exif_orientation_is_applied():
    image = gradient(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90° clockwise
    img = decode_image(encode(image, "JPEG", exif=exif))
    assert img.rgb.shape[:2] == (40, 20) and img.exif_rotated


def test_huge_jpeg_is_decoded_reduced_but_never_below_the_limit():
    img = decode_image(encode(gradient(5000, 3000), "JPEG"), max_side=2048)
    assert 2048 <= img.width < 5000 and img.height * 5000 == img.width * 3000
    assert decode_image(encode(gradient(5000, 3000), "JPEG"), max_side=None).width == 5000
