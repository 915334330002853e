"""The engine's pixel resampling: OpenCV when it is installed, else a numpy port that computes the same pixels.

Why two: opencv-python-headless is 160 MB installed, more than half of what a Lambda function may weigh, and the
engine needs five of its functions. The port follows OpenCV 5's arithmetic step by step (its INTER_AREA weight
table and float32 summation order; its float32 bilinear formula with fused multiply-adds; its integer pyrDown),
so chips and descriptors come out identical (``tests/unit/test_imageops.py``
compares every function with OpenCV; BENCHMARKS.md "Lambda runtime size" the whole engine). The price is speed:
the engine runs about 2x slower on the port (INTER_AREA dominates), so OpenCV is used wherever it is installed.
The quality measures (gray level, Laplacian) are plain numpy in both cases.

One OpenCV detail is machine-dependent: warpAffine computes the last ``width % lanes`` columns of each row with a
scalar formula whose rounding differs from its SIMD one (``lanes`` = 16 with AVX2). The port reproduces the AVX2
build; on CPUs where OpenCV uses other vector widths, OpenCV itself gives slightly different chips.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

try:  # optional: the `opencv` extra (and every install but the lean Lambda layer)
    import cv2
except ImportError:  # pragma: no cover - exercised by forcing the port in tests
    cv2 = None  # type: ignore[assignment]

_state = {"opencv": cv2 is not None}
_F32 = np.float32
_WARP_LANES = 16  # uint8 lanes of OpenCV's AVX2 warpAffine loop (see the module docstring)


def opencv_available() -> bool:
    return cv2 is not None


def using_opencv() -> bool:
    return _state["opencv"]


def use_opencv(enabled: bool) -> None:
    """Pick the implementation (tests and benchmarks compare both); enabling needs OpenCV installed."""
    if enabled and cv2 is None:
        raise RuntimeError("OpenCV is not installed (pip install 'facesearch[opencv]')")
    _state["opencv"] = bool(enabled)


# -- INTER_AREA downscale -----------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _area_table(ssize: int, dsize: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's area-resize weights for one axis, as (taps, dsize) source indices and float32 weights.

    A destination pixel covers ``scale`` source pixels: a partial one, whole ones, a partial one, each weighted by
    its overlap (skipped below 1e-3). Padding taps repeat the last source with weight 0 (adding +0.0 is exact)."""
    scale = 1.0 / (dsize / ssize)  # as OpenCV computes it, in double
    rows: list[list[tuple[int, float]]] = []
    for dx in range(dsize):
        fsx1 = dx * scale
        fsx2 = fsx1 + scale
        cell = min(scale, ssize - fsx1)
        sx2 = min(math.floor(fsx2), ssize - 1)
        sx1 = min(math.ceil(fsx1), sx2)
        row = []
        if sx1 - fsx1 > 1e-3:
            row.append((sx1 - 1, (sx1 - fsx1) / cell))
        row += [(sx, 1.0 / cell) for sx in range(sx1, sx2)]
        if fsx2 - sx2 > 1e-3:
            row.append((sx2, min(min(fsx2 - sx2, 1.0), cell) / cell))
        rows.append(row)
    taps = max(len(r) for r in rows)
    idx = np.zeros((taps, dsize), np.intp)
    weight = np.zeros((taps, dsize), _F32)
    for dx, row in enumerate(rows):
        for k in range(taps):
            idx[k, dx] = row[min(k, len(row) - 1)][0]
            weight[k, dx] = row[k][1] if k < len(row) else 0.0
    return idx, weight


def _area_numpy(img: np.ndarray, w: int, h: int) -> np.ndarray:
    if img.shape[1] == 2 * w and img.shape[0] == 2 * h:  # OpenCV's integer-scale path: rounded 2x2 means
        s = img[0::2, 0::2].astype(np.uint16) + img[1::2, 0::2] + img[0::2, 1::2] + img[1::2, 1::2]
        return ((s + 2) >> 2).astype(np.uint8)
    if w > img.shape[1] or h > img.shape[0]:
        raise ValueError("area_resize only shrinks")
    xi, xw = _area_table(img.shape[1], w)
    yi, yw = _area_table(img.shape[0], h)
    # Rows first (each source row's horizontal sums), then columns, float32, in OpenCV's order. Working on the
    # transposed image makes every gather copy whole rows.
    t = np.ascontiguousarray(img.transpose(1, 0, 2))
    buf = np.multiply(t[xi[0]], xw[0][:, None, None], dtype=_F32)
    for k in range(1, len(xi)):
        buf += np.multiply(t[xi[k]], xw[k][:, None, None], dtype=_F32)
    b = np.ascontiguousarray(buf.transpose(1, 0, 2))
    out = b[yi[0]] * yw[0][:, None, None]
    for k in range(1, len(yi)):
        out += b[yi[k]] * yw[k][:, None, None]
    return np.rint(out).clip(0, 255).astype(np.uint8)


def area_resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """``cv2.resize(img, (w, h), interpolation=INTER_AREA)`` for a uint8 HxWx3 downscale."""
    if using_opencv():
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    if img.shape[1] == w and img.shape[0] == h:
        return img.copy()
    return _area_numpy(img, w, h)


# -- bilinear sampling (warpAffine, remap) ------------------------------------------------------------------------


def _fma(a, b, c) -> np.ndarray:
    """float32 fused multiply-add: the float64 product of two float32 values is exact, so one rounding remains."""
    return (np.asarray(a, np.float64) * np.asarray(b, np.float64) + np.asarray(c, np.float64)).astype(_F32)


def _bilinear(src: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """OpenCV 5's INTER_LINEAR with a black constant border at float32 source coordinates ``sx``, ``sy``."""
    h, w = src.shape[:2]
    ix = np.floor(sx).astype(np.int64)
    iy = np.floor(sy).astype(np.int64)
    ax = (sx - ix.astype(_F32)).astype(_F32)[..., None]
    ay = (sy - iy.astype(_F32)).astype(_F32)[..., None]
    padded = np.zeros((h + 2, w + 2, src.shape[2]), _F32)  # one black pixel around: taps outside read 0
    padded[1:-1, 1:-1] = src

    def tap(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        inside = (xx >= -1) & (xx <= w) & (yy >= -1) & (yy <= h)
        return np.where(inside[..., None], padded[np.clip(yy + 1, 0, h + 1), np.clip(xx + 1, 0, w + 1)], _F32(0))

    p00, p01, p10, p11 = tap(iy, ix), tap(iy, ix + 1), tap(iy + 1, ix), tap(iy + 1, ix + 1)
    v0 = _fma(ax, p01 - p00, p00)
    v1 = _fma(ax, p11 - p10, p10)
    return np.rint(_fma(ay, v1 - v0, v0)).clip(0, 255).astype(np.uint8)


def invert_affine(m: np.ndarray) -> list[float]:
    """``cv2.invertAffineTransform`` (also warpAffine's own inversion), in double, in OpenCV's order of operations;
    returns the 6 coefficients row by row."""
    a = [float(v) for v in np.asarray(m, np.float64).reshape(6)]
    d = a[0] * a[4] - a[1] * a[3]
    d = 1.0 / d if d != 0 else 0.0
    a11, a22 = a[4] * d, a[0] * d
    a[0] = a11
    a[1] *= -d
    a[3] *= -d
    a[4] = a22
    b1 = -a[0] * a[2] - a[1] * a[5]
    b2 = -a[3] * a[2] - a[4] * a[5]
    a[2], a[5] = b1, b2
    return a


def warp_affine(img: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """``cv2.warpAffine(img, matrix, (size, size), INTER_LINEAR, BORDER_CONSTANT, 0)`` for uint8 HxWx3."""
    if using_opencv():
        return cv2.warpAffine(
            img, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
    m = [_F32(v) for v in invert_affine(matrix)]
    x = np.arange(size, dtype=_F32)[None, :]
    y = np.arange(size, dtype=_F32)[:, None]
    # SIMD columns: src = fma(m0, x, m1*y + m2); the scalar tail: fma(x, m0, m1*y) + m2 (module docstring).
    sx = _fma(m[0], x, (y * m[1] + m[2]).astype(_F32))
    sy = _fma(m[3], x, (y * m[4] + m[5]).astype(_F32))
    tail = size - size % _WARP_LANES
    if tail < size:
        xt = x[:, tail:]
        sx[:, tail:] = _fma(xt, m[0], (y * m[1]).astype(_F32)) + m[2]
        sy[:, tail:] = _fma(xt, m[3], (y * m[4]).astype(_F32)) + m[5]
    return _bilinear(img, sx, sy)


def remap(src: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """``cv2.remap(src, map_x, map_y, INTER_LINEAR, BORDER_CONSTANT, 0)`` with float32 maps, uint8 HxWx3."""
    if using_opencv():
        return cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return _bilinear(src, map_x.astype(_F32), map_y.astype(_F32))


# -- the rest -----------------------------------------------------------------------------------------------------


def pyr_down(img: np.ndarray) -> np.ndarray:
    """``cv2.pyrDown(img)``: 5x5 binomial blur, every other pixel, reflect-101 border, rounded integer result."""
    if using_opencv():
        return cv2.pyrDown(img)
    h, w = img.shape[:2]
    taps = np.array([1, 4, 6, 4, 1], np.int32)

    def reflect(i: np.ndarray, n: int) -> np.ndarray:
        i = np.abs(i)
        return np.where(i >= n, 2 * (n - 1) - i, i)

    ox = reflect(2 * np.arange((w + 1) // 2)[:, None] + np.arange(-2, 3)[None, :], w)
    oy = reflect(2 * np.arange((h + 1) // 2)[:, None] + np.arange(-2, 3)[None, :], h)
    src = img.astype(np.int32)
    rows = sum(src[:, ox[:, k]] * taps[k] for k in range(5))
    total = sum(rows[oy[:, k]] * taps[k] for k in range(5))
    return ((total + 128) >> 8).astype(np.uint8)


def transpose(img: np.ndarray) -> np.ndarray:
    """Swap the two image axes into a contiguous copy (``cv2.transpose``)."""
    if using_opencv():
        return cv2.transpose(img)
    return np.ascontiguousarray(np.swapaxes(img, 0, 1))


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma in 14-bit fixed point, rounded: always numpy, so quality scores do not depend on the OpenCV
    release (OpenCV 5 rounds differently from 4.x; the two differ by at most 1 level on a few pixels)."""
    c = rgb.astype(np.int32)
    return ((c[..., 0] * 4899 + c[..., 1] * 9617 + c[..., 2] * 1868 + (1 << 13)) >> 14).astype(np.uint8)


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of ``cv2.Laplacian(gray, CV_64F)`` (3x3 cross kernel, reflect-101 border): a sharpness measure.
    Exact integers in float64 either way, so always numpy."""
    g = gray.astype(np.float64)
    p = np.pad(g, 1, mode="reflect")  # numpy's "reflect" is OpenCV's reflect-101
    lap = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4.0 * g
    return float(lap.var())
