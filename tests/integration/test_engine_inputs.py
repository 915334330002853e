"""The engine on awkward but real inputs: every one gives the right faces or a typed, clear error."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from facesearch.errors import ImageTooLargeException, InvalidImageFormatException


@pytest.fixture(scope="module")
def portrait(faces_dev) -> Image.Image:
    return Image.open(faces_dev / "images" / "img1.jpg").convert("RGB")


@pytest.fixture(scope="module")
def reference(engine, portrait) -> np.ndarray:
    return engine.analyze(encode(portrait, "JPEG", quality=95)).faces[0].descriptor


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def same_person(engine, data: bytes, reference: np.ndarray) -> float:
    faces = engine.analyze(data).faces
    assert len(faces) >= 1
    return float(np.linalg.norm(faces[0].descriptor - reference))


def test_exif_rotated_photo_is_turned_upright_before_detection(engine, portrait, reference):
    exif = Image.Exif()
    exif[0x0112] = 8  # pixels stored rotated; viewers turn them 90° counter-clockwise
    stored = portrait.transpose(Image.Transpose.ROTATE_270)
    result = engine.analyze(encode(stored, "JPEG", quality=95, exif=exif))
    assert result.image.exif_rotated and (result.width, result.height) == portrait.size
    eyes_y = result.faces[0].landmarks[:2, 1].mean()
    mouth_y = result.faces[0].landmarks[3:, 1].mean()
    assert eyes_y < mouth_y  # upright
    assert same_person(engine, encode(stored, "JPEG", quality=95, exif=exif), reference) < 0.2


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("CMYK", "JPEG"), ("RGBA", "PNG"), ("L", "PNG"), ("P", "PNG")],
)
def test_other_colour_modes_find_the_same_person(engine, portrait, reference, mode, fmt):
    image = portrait.convert(mode)
    limit = 0.3 if mode in ("L", "P") else 0.2  # grayscale/palette lose colour, not identity
    assert same_person(engine, encode(image, fmt), reference) < limit


def test_sixteen_bit_png_finds_the_face(engine, portrait):
    gray16 = (np.asarray(portrait.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    faces = engine.analyze(encode(Image.fromarray(gray16), "PNG")).faces
    assert len(faces) == 1


def test_no_face_and_tiny_images_return_no_faces(engine):
    noise = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    assert engine.analyze(encode(Image.fromarray(noise), "JPEG")).faces == []
    assert engine.analyze(encode(Image.new("RGB", (1, 1)), "PNG")).faces == []
    assert engine.analyze(encode(Image.new("RGB", (11, 300)), "PNG")).faces == []


def test_bad_bytes_raise_typed_errors(engine, portrait):
    good = encode(portrait, "JPEG")
    for data in (b"", b"hello", good[: len(good) // 3]):
        with pytest.raises(InvalidImageFormatException):
            engine.analyze(data)
    big = Image.new("L", (10000, 10000))
    with pytest.raises(ImageTooLargeException):
        engine.analyze(encode(big, "PNG"))


@pytest.mark.slow
def test_crowd_photo_yields_hundreds_of_embedded_faces(engine, crowd_photo):
    result = engine.analyze(crowd_photo.read_bytes())
    assert len(result.faces) >= 150
    assert all(f.descriptor is not None and f.descriptor.shape == (128,) for f in result.faces)
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in result.faces]
    assert areas == sorted(areas, reverse=True)
    assert len(engine.analyze(crowd_photo.read_bytes(), max_faces=10, embed=False).faces) == 10


def test_small_faces_are_skipped_by_default_as_rekognition_does(engine, crowd_photo, monkeypatch):
    data = crowd_photo.read_bytes()
    default = engine.analyze(data, embed=False).faces  # 40 px at 1920 px: ≈ 33 px in this 1600 px photo
    monkeypatch.setattr(engine, "min_face_fraction", 0.0)
    everyone = engine.analyze(data, embed=False).faces
    assert 150 <= len(default) < len(everyone)
    assert len(engine.analyze(data, embed=False, min_face_size=20).faces) == len(everyone)  # explicit size wins


def test_skipping_small_faces_leaves_the_large_ones_unchanged(engine, faces_dev, monkeypatch):
    """The skipped levels are the finest of the exhaustive search's own grid, so the calibration still holds."""
    data = (faces_dev / "images" / "img1.jpg").read_bytes()  # 1868 px: the skip drops the finest levels
    default = engine.analyze(data).faces
    monkeypatch.setattr(engine, "min_face_fraction", 0.0)
    exhaustive = engine.analyze(data).faces
    assert len(default) == len(exhaustive) == 1
    np.testing.assert_allclose(default[0].landmarks, exhaustive[0].landmarks, atol=1e-3)
    assert float(np.linalg.norm(default[0].descriptor - exhaustive[0].descriptor)) < 1e-4
