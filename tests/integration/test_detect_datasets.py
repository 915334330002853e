"""MTCNN detector on the shared photos: every faces-dev portrait yields its face, the crowd yields hundreds, and the
parallel path finds exactly what the serial one does."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facesearch.engine.detect import MtcnnDetector

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
PORTRAITS = sorted((DATASETS / "faces-dev" / "images").glob("img*.jpg"))
CROWD = DATASETS / "crowd" / "largest_selfie.jpg"


def _rgb(path: Path) -> np.ndarray:
    if not path.is_file():
        pytest.fail(f"shared dataset missing: {path} (expected beside the repository as ../shared/datasets)")
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def detector() -> MtcnnDetector:
    return MtcnnDetector(threads=2)


def test_faces_dev_is_there() -> None:
    assert len(PORTRAITS) >= 61, f"expected the 61 faces-dev photos under {DATASETS}"


@pytest.mark.slow
def test_every_portrait_yields_its_face(detector: MtcnnDetector) -> None:
    missed = []
    for path in PORTRAITS:
        rgb = _rgb(path)
        faces = detector.detect(rgb)
        if not faces:
            missed.append(path.name)
            continue
        # the largest face is the subject: confident, and a sizeable part of the photo
        top = faces[0]
        assert top.confidence > 0.95, path.name
        assert top.box[2] - top.box[0] > 0.05 * max(rgb.shape[:2]), path.name
    assert not missed, f"no face found in {missed}"


@pytest.mark.slow
def test_crowd_photo_yields_hundreds(detector: MtcnnDetector) -> None:
    rgb = _rgb(CROWD)
    faces = detector.detect(rgb)
    assert len(faces) >= 150
    h, w = rgb.shape[:2]
    for f in faces:
        assert -0.5 * (f.box[2] - f.box[0]) < f.box[0] < w and -0.5 * (f.box[3] - f.box[1]) < f.box[1] < h
    # a few hundred faces, so at most a handful of duplicates: few boxes mostly inside another
    boxes = np.array([f.box for f in faces])
    x1, y1, x2, y2 = boxes.T
    iw = np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None])
    ih = np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area = (x2 - x1) * (y2 - y1)
    overlap = inter / np.minimum(area[:, None], area[None])
    np.fill_diagonal(overlap, 0)
    assert int((overlap > 0.5).sum()) // 2 <= 3


@pytest.mark.slow
def test_parallel_matches_serial_on_every_photo(detector: MtcnnDetector) -> None:
    """threads=2 (the fixture) and threads=1 give the same boxes, landmarks and confidences, bit for bit."""
    serial = MtcnnDetector(threads=1)
    assert detector.threads == 2 and serial.threads == 1
    for path in [*PORTRAITS, CROWD]:
        rgb = _rgb(path)
        got, want = detector.detect(rgb), serial.detect(rgb)
        assert len(got) == len(want), path.name
        for a, b in zip(got, want, strict=True):
            assert a.box == b.box and a.confidence == b.confidence, path.name
            assert np.array_equal(a.landmarks, b.landmarks), path.name
