"""The numpy port computes OpenCV's pixels exactly: every function against OpenCV, on the shapes the engine uses."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from facesearch.engine import imageops

cv2 = pytest.importorskip("cv2", reason="the comparison needs OpenCV (the `opencv` extra)")


@pytest.fixture
def port() -> Iterator[None]:
    """Run the body on the numpy port, whatever is installed."""
    before = imageops.using_opencv()
    imageops.use_opencv(False)
    yield
    imageops.use_opencv(before)


def _image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth gradients plus noise: flat areas, edges and every value from 0 to 255."""
    yy, xx = np.mgrid[:h, :w]
    base = 127.5 + 120 * np.sin(xx / 7.0 + yy / 11.0)[..., None] * np.array([1.0, 0.6, -0.8])
    return np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)


def test_area_resize_equals_inter_area_for_fractional_halving_and_odd_sizes(port: None) -> None:
    rng = np.random.default_rng(1)
    cases = [(97, 131, 80, 57), (120, 160, 60, 80), (121, 161, 60, 80), (300, 200, 212, 141), (40, 40, 12, 12)]
    for _ in range(25):
        h, w = (int(v) for v in rng.integers(13, 260, 2))
        s = rng.uniform(1.0, 2.3)
        cases.append((h, w, max(1, int(h / s)), max(1, int(w / s))))
    for h, w, dh, dw in cases:
        img = _image(rng, h, w)
        expected = cv2.resize(img, (dw, dh), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(imageops.area_resize(img, dw, dh), expected, err_msg=f"{h}x{w} -> {dh}x{dw}")


def test_warp_affine_equals_opencv_for_similarity_transforms_also_past_the_border(port: None) -> None:
    rng = np.random.default_rng(2)
    img = _image(rng, 240, 200)
    for _ in range(20):
        angle, scale = rng.uniform(-0.6, 0.6), rng.uniform(0.4, 2.5)
        shift = rng.uniform(-120, 60, 2)
        m = np.array([[scale * np.cos(angle), -scale * np.sin(angle), shift[0]],
                      [scale * np.sin(angle), scale * np.cos(angle), shift[1]]])  # fmt: skip
        expected = cv2.warpAffine(img, m, (150, 150), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        np.testing.assert_array_equal(imageops.warp_affine(img, m, 150), expected)
        np.testing.assert_array_equal(np.array(imageops.invert_affine(m)).reshape(2, 3), cv2.invertAffineTransform(m))


def test_remap_equals_opencv_inside_and_across_the_border(port: None) -> None:
    rng = np.random.default_rng(3)
    img = _image(rng, 90, 120)
    map_x = rng.uniform(-4, 124, (48 * 7, 48)).astype(np.float32)
    map_y = rng.uniform(-4, 94, (48 * 7, 48)).astype(np.float32)
    map_x[:48] = np.round(map_x[:48])  # whole-pixel coordinates too
    expected = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    np.testing.assert_array_equal(imageops.remap(img, map_x, map_y), expected)


@pytest.mark.parametrize(("h", "w"), [(64, 64), (65, 63), (7, 9), (301, 250)])
def test_pyr_down_gray_laplacian_and_transpose_match_opencv(port: None, h: int, w: int) -> None:
    img = _image(np.random.default_rng(h * w), h, w)
    np.testing.assert_array_equal(imageops.pyr_down(img), cv2.pyrDown(img))
    gray = imageops.rgb_to_gray(img)  # BT.601 like OpenCV's, whose rounding changed in OpenCV 5: within 1 level
    assert np.abs(gray.astype(int) - cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)).max() <= 1
    assert imageops.laplacian_variance(gray) == float(cv2.Laplacian(gray, cv2.CV_64F).var())
    np.testing.assert_array_equal(imageops.transpose(img), cv2.transpose(img))


def test_the_switch_needs_opencv_to_turn_it_on(monkeypatch) -> None:
    monkeypatch.setattr(imageops, "cv2", None)
    with pytest.raises(RuntimeError, match="opencv"):
        imageops.use_opencv(True)
