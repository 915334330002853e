"""Warp a face to the 150×150 chip dlib's ResNet was trained on, from the detector's 5 landmarks.

The template is dlib's mean face at padding 0.25 (measured from dlib's get_face_chip), so our chips match
what dlib's own pipeline feeds the network. Large faces are shrunk by an image pyramid first: a single
bilinear warp from, say, 600 px to 150 px aliases and moves descriptors. Pixels go through
:mod:`facesearch.engine.imageops` (OpenCV, or its exact numpy port when OpenCV is not installed).
"""

from __future__ import annotations

import numpy as np

from facesearch.engine import imageops

CHIP_SIZE = 150
# (x, y) in the 150×150 chip: image-left eye, image-right eye, nose tip, image-left/right mouth corners.
TEMPLATE = np.array(
    [[47.55, 46.60], [100.48, 46.60], [74.01, 76.56], [50.41, 103.02], [97.61, 103.02]], dtype=np.float64
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation+uniform scale+translation mapping src→dst (Umeyama); returns a 2×3 matrix."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1.0
    rotation = u @ d @ vt
    var_src = (src_c**2).sum() / len(src)
    scale = float(np.trace(np.diag(s) @ d) / var_src) if var_src > 0 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


def align_face(rgb: np.ndarray, landmarks: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
    """Return the uint8 size×size×3 RGB chip for one face."""
    template = TEMPLATE * (size / CHIP_SIZE)
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    matrix = similarity_transform(points, template)
    scale = float(np.hypot(matrix[0, 0], matrix[0, 1]))

    # Crop to the chip's footprint (plus a margin) before any resampling; big images stay cheap.
    inverse = np.array(imageops.invert_affine(matrix)).reshape(2, 3)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    footprint = corners @ inverse.T
    margin = 2.0 / max(scale, 1e-6)
    x0 = int(max(np.floor(footprint[:, 0].min() - margin), 0))
    y0 = int(max(np.floor(footprint[:, 1].min() - margin), 0))
    x1 = int(min(np.ceil(footprint[:, 0].max() + margin), rgb.shape[1]))
    y1 = int(min(np.ceil(footprint[:, 1].max() + margin), rgb.shape[0]))
    if x1 <= x0 or y1 <= y0:  # face entirely outside the image: nothing to sample
        return np.zeros((size, size, 3), dtype=np.uint8)
    region = rgb[y0:y1, x0:x1]
    offset = np.array([x0, y0], dtype=np.float64)

    # Halve with pyrDown while the warp would still shrink by more than 2×.
    factor = 1.0
    while scale / factor < 0.5 and min(region.shape[:2]) >= 4:
        region = imageops.pyr_down(region)
        factor *= 0.5
    local = (points - offset) * factor
    matrix = similarity_transform(local, template)
    return imageops.warp_affine(region, matrix, size)
