"""Our ONNX conversion of dlib's face ResNet, run by Embedder, against dlib itself on the same chips."""

from __future__ import annotations

from pathlib import Path

import dlib  # dlib-bin, a dev dependency: the parity reference must be there
import numpy as np
import pytest

from facesearch.engine.embed import Embedder
from facesearch.models.build import RESNET_DAT, dlib_file
from facesearch.models.dlib_convert import convert_dlib_resnet

IMAGES = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "faces-dev" / "images"
# Small photos (fast to detect with HOG), one with four faces.
PHOTOS = ("img12.jpg", "img25.jpg", "img5.jpg", "img51.jpg", "img62.jpg", "selfie-many-people.jpg")
NOISE_CHIPS = 3
TOLERANCE = 1e-5  # max abs difference per descriptor component; measured ~4e-7 on faces, ~2e-6 worst


@pytest.fixture(scope="session")
def resnet_dat() -> Path:
    """dlib's .dat, unpacked from the pinned face-recognition-models sdist in the source cache."""
    return dlib_file(RESNET_DAT)


@pytest.fixture(scope="session")
def resnet_onnx(resnet_dat: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh conversion (under a second), so the test checks the converter, not a cached artifact."""
    out = tmp_path_factory.mktemp("dlib_onnx") / "dlib_resnet_v1.onnx"
    convert_dlib_resnet(resnet_dat, out)
    return out


@pytest.fixture(scope="module")
def embedder(resnet_onnx: Path) -> Embedder:
    return Embedder(resnet_onnx, threads=2, batch_size=4)  # 4 so the chips span several partial batches


@pytest.fixture(scope="module")
def chips() -> np.ndarray:
    """Aligned chips made entirely by dlib (HOG detector, 5-point predictor, get_face_chip), plus noise."""
    if not IMAGES.is_dir():
        pytest.fail(f"shared dataset missing: {IMAGES}")
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_file("shape_predictor_5_face_landmarks.dat")))
    out = []
    for name in PHOTOS:
        img = dlib.load_rgb_image(str(IMAGES / name))
        for rect in detector(img, 1):
            out.append(dlib.get_face_chip(img, predictor(img, rect), size=150, padding=0.25))
    assert len(out) >= len(PHOTOS), f"dlib found only {len(out)} faces in {PHOTOS}"
    rng = np.random.default_rng(1234)
    out += [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8) for _ in range(NOISE_CHIPS)]
    return np.stack(out)


@pytest.fixture(scope="module")
def dlib_descriptors(resnet_dat: Path, chips: np.ndarray) -> np.ndarray:
    facerec = dlib.face_recognition_model_v1(str(resnet_dat))
    return np.stack([np.asarray(facerec.compute_face_descriptor(chip)) for chip in chips])


def test_descriptors_match_dlib(embedder: Embedder, chips: np.ndarray, dlib_descriptors: np.ndarray):
    ours = embedder.embed(chips)
    assert ours.shape == (len(chips), 128)
    assert ours.dtype == np.float32
    diff = np.abs(ours.astype(np.float64) - dlib_descriptors)
    assert diff.max() <= TOLERANCE, f"max abs diff {diff.max():.3g} per chip {diff.max(axis=1)}"


def test_batch_size_does_not_change_descriptors(resnet_onnx: Path, embedder: Embedder, chips: np.ndarray):
    one_at_a_time = Embedder(resnet_onnx, threads=1, batch_size=1).embed(chips[:3])
    np.testing.assert_allclose(one_at_a_time, embedder.embed(chips[:3]), rtol=0, atol=1e-6)


def test_no_chips_gives_no_descriptors(embedder: Embedder):
    out = embedder.embed(np.zeros((0, 150, 150, 3), dtype=np.uint8))
    assert out.shape == (0, 128)
    assert out.dtype == np.float32


@pytest.mark.parametrize(
    ("chips", "message"),
    [
        (np.zeros((1, 150, 150, 3), dtype=np.float32), "uint8"),
        (np.zeros((150, 150, 3), dtype=np.uint8), "shape"),
        (np.zeros((1, 112, 112, 3), dtype=np.uint8), "shape"),
        (np.zeros((1, 150, 150, 4), dtype=np.uint8), "shape"),
        ([[0]], "numpy array"),
    ],
)
def test_bad_chips_are_rejected(embedder: Embedder, chips, message: str):
    with pytest.raises(ValueError, match=message):
        embedder.embed(chips)


def test_conversion_is_byte_identical(resnet_dat: Path, resnet_onnx: Path, tmp_path: Path):
    again = tmp_path / "again.onnx"
    convert_dlib_resnet(resnet_dat, again)
    assert again.read_bytes() == resnet_onnx.read_bytes()
