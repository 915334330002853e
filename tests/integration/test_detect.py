"""MTCNN detector: contract of MtcnnDetector.detect, the exactness of our graph rewrite and of our NMS."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facesearch.engine.detect import DetectedFace, MtcnnDetector, load_session, nms

IMAGES = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "faces-dev" / "images"


def _rgb(name: str, longest: int | None = None) -> np.ndarray:
    path = IMAGES / name
    if not path.is_file():
        pytest.fail(f"shared dataset missing: {path} (expected beside the repository as ../shared/datasets)")
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    if longest is not None:
        f = longest / max(rgb.shape[:2])
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA)
    return rgb


@pytest.fixture(scope="module")
def detector() -> MtcnnDetector:
    return MtcnnDetector(threads=2)


@pytest.fixture(scope="module")
def group() -> np.ndarray:
    return _rgb("selfie-many-people.jpg")  # 600x604, five whole faces (two more are cut by the border)


def test_no_face_on_blank_or_noise(detector: MtcnnDetector) -> None:
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert detector.detect(np.full((480, 640, 3), 255, np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert detector.detect(noise) == []


@pytest.mark.parametrize("shape", [(5, 5, 3), (11, 400, 3), (400, 11, 3), (12, 12, 3), (1, 1, 3)])
def test_tiny_images_return_nothing(detector: MtcnnDetector, shape: tuple[int, int, int]) -> None:
    assert detector.detect(np.full(shape, 128, np.uint8)) == []


def test_min_face_larger_than_image_returns_nothing(detector: MtcnnDetector) -> None:
    assert detector.detect(_rgb("img1.jpg", longest=320), min_face_size=1000) == []


def test_single_face_geometry(detector: MtcnnDetector) -> None:
    rgb = _rgb("img1.jpg", longest=640)
    faces = detector.detect(rgb)
    assert len(faces) == 1
    face = faces[0]
    assert isinstance(face, DetectedFace)
    assert 0.9 < face.confidence <= 1.0
    x1, y1, x2, y2 = face.box
    assert x2 - x1 > 100 and y2 - y1 > 100  # a portrait: the face is large
    lm = face.landmarks
    assert lm.shape == (5, 2) and lm.dtype == np.float32
    assert np.all((lm[:, 0] > x1) & (lm[:, 0] < x2) & (lm[:, 1] > y1) & (lm[:, 1] < y2))
    left_eye, right_eye, nose, mouth_left, mouth_right = lm
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]  # image-left first
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])  # eyes above the mouth


def test_sorted_by_size_and_capped(detector: MtcnnDetector, group: np.ndarray) -> None:
    faces = detector.detect(group)
    assert len(faces) >= 5
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    assert areas == sorted(areas, reverse=True)
    for f in faces:
        assert f.box[0] < f.box[2] and f.box[1] < f.box[3]
        assert np.all((f.landmarks >= np.array(f.box[:2])) & (f.landmarks <= np.array(f.box[2:])))
    top2 = detector.detect(group, max_faces=2)
    assert [f.box for f in top2] == [f.box for f in faces[:2]]
    assert detector.detect(group, max_faces=0) == []


def test_min_face_size_drops_small_faces(detector: MtcnnDetector, group: np.ndarray) -> None:
    all_faces = detector.detect(group)
    big = detector.detect(group, min_face_size=140)
    assert 0 < len(big) < len(all_faces)
    assert all(f.box[2] - f.box[0] >= 70 for f in big)  # boxes are tighter than the 140 px search window


def test_skipping_small_faces_keeps_the_coarse_end_of_the_same_pyramid(detector: MtcnnDetector) -> None:
    full = detector.pyramid(1200, 1600, 20)
    kept = detector.pyramid(1200, 1600, 20, skip_faces_under=33)
    assert kept == full[len(full) - len(kept) :] and len(kept) < len(full)
    assert 12 / kept[0] <= 33 < 12 / kept[1]  # the finest level kept still sees 33 px faces
    assert detector.pyramid(1200, 1600, 20, skip_faces_under=1e9) == full[-1:]


def test_downscaled_detection_maps_back() -> None:
    """An image bigger than max_detect_side is searched downscaled; results come back in its own pixels."""
    small = _rgb("selfie-many-people.jpg")
    # 2x pixel replication: the detector's INTER_AREA downscale to max_detect_side gives back `small` exactly
    big = cv2.resize(small, (small.shape[1] * 2, small.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    det = MtcnnDetector(threads=2, max_detect_side=max(small.shape[:2]))
    a = det.detect(small)
    b = det.detect(big, min_face_size=40)  # the same faces: 40 px in `big` is 20 px in the searched copy
    assert len(a) >= 5 and len(b) == len(a)
    for fa, fb in zip(a, b, strict=True):
        np.testing.assert_allclose(np.array(fb.box), 2 * np.array(fa.box), rtol=0, atol=0.01)
        np.testing.assert_allclose(fb.landmarks, 2 * fa.landmarks, rtol=0, atol=0.01)
        assert fb.confidence == pytest.approx(fa.confidence)


def test_rejects_non_rgb(detector: MtcnnDetector) -> None:
    with pytest.raises(ValueError):
        detector.detect(np.zeros((100, 100), np.uint8))


@pytest.mark.parametrize(
    ("name", "inp", "shape"),
    [("pnet", "input_1", (1, 61, 47, 3)), ("rnet", "input_2", (7, 24, 24, 3)), ("onet", "input_3", (7, 48, 48, 3))],
)
def test_prelu_rewrite_changes_nothing(name: str, inp: str, shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    fast = load_session(f"{name}.onnx", threads=1).run(None, {inp: x})
    plain = load_session(f"{name}.onnx", threads=1, fast=False).run(None, {inp: x})
    for a, b in zip(fast, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def _textbook_nms(boxes: np.ndarray, scores: np.ndarray, t: float, mode: str) -> list[int]:
    """The classic loop: keep the best remaining box, drop every remaining box it overlaps by more than t."""
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        iw = np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])
        ih = np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])
        inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[~((inter > 0) & (inter > t * denom))]
    return keep


@pytest.mark.parametrize("mode", ["union", "min"])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_nms_is_exact_greedy(mode: str, threshold: float) -> None:
    rng = np.random.default_rng(7)
    for trial in range(24):
        n = int(rng.integers(0, 120) if trial % 4 else rng.integers(300, 700))  # both the dense and the sweep path
        xy = rng.uniform(0, 150 if n < 300 else 400, (n, 2))
        side = rng.uniform(1, 60, (n, 1)) * (rng.uniform(0.5, 1.5, (n, 2)) if trial % 2 else 1.0)
        if trial % 3 == 0:  # grid-aligned, equal sizes and tied scores, like one P-net level
            xy, side = np.round(xy / 4) * 4, np.full((n, 1), 12.0)
        boxes = np.hstack([xy, xy + side])
        scores = np.round(rng.uniform(0, 1, n), 1 if trial % 3 == 0 else 6)
        assert nms(boxes, scores, threshold, mode).tolist() == _textbook_nms(boxes, scores, threshold, mode)
