"""Face quality (size, sharpness, brightness, pose) and Rekognition's QualityFilter levels.

Why: indexing a blurred, tiny or profile face makes a gallery entry that matches strangers or nobody.
Rekognition rejects such faces at IndexFaces with a reason (UnindexedFaces.Reasons); we do the same with
measurable, documented bars instead of an opaque score.

Measures (all on the aligned 150×150 chip, so they don't depend on image resolution, except size):
* size: the shorter side of the detected box in image pixels.
* sharpness 0–100: variance of the Laplacian of the chip's central face area, mapped by 100·(1 − e^(−v/300)).
* brightness 0–100: mean gray level of the central face area, as a percentage of 255.
* pose (degrees): roll from the eye line; yaw and pitch estimated from where the nose tip sits between the
  eyes and mouth relative to the frontal template (an approximation: 5 points carry no depth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from facesearch.engine.align import TEMPLATE
from facesearch.engine.types import FaceQuality, QualityFilter

__all__ = ["FaceQuality", "QualityFilter", "assess_quality", "quality_reasons"]

_TEMPLATE_EYE_MID = (TEMPLATE[0] + TEMPLATE[1]) / 2
_TEMPLATE_MOUTH_MID = (TEMPLATE[3] + TEMPLATE[4]) / 2
_TEMPLATE_PITCH_RATIO = (TEMPLATE[2, 1] - _TEMPLATE_EYE_MID[1]) / (_TEMPLATE_MOUTH_MID[1] - _TEMPLATE_EYE_MID[1])


@dataclass(frozen=True)
class QualityBar:
    min_confidence: float
    min_size: float
    min_sharpness: float
    min_brightness: float
    max_brightness: float
    max_abs_yaw: float
    max_abs_pitch: float


# AUTO is LOW: it keeps every face of the dev gallery (old, small and soft photos included) while still
# refusing the faces that only produce false matches. Callers who curate galleries pick MEDIUM or HIGH.
QUALITY_BARS: dict[QualityFilter, QualityBar] = {
    QualityFilter.LOW: QualityBar(0.80, 20, 8, 5, 99.5, 75, 60),
    QualityFilter.MEDIUM: QualityBar(0.90, 40, 14, 12, 98, 55, 40),
    QualityFilter.HIGH: QualityBar(0.97, 64, 25, 20, 95, 35, 25),
}
QUALITY_BARS[QualityFilter.AUTO] = QUALITY_BARS[QualityFilter.LOW]


def assess_quality(chip: np.ndarray, landmarks: np.ndarray, box: tuple[float, float, float, float]) -> FaceQuality:
    """Measure one face from its aligned chip, its landmarks and its box (image pixels)."""
    gray = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    center = gray[int(h * 0.2) : int(h * 0.85), int(w * 0.2) : int(w * 0.8)]
    variance = float(cv2.Laplacian(center, cv2.CV_64F).var())
    sharpness = 100.0 * (1.0 - math.exp(-variance / 300.0))
    brightness = float(center.mean()) / 255.0 * 100.0
    roll, yaw, pitch = estimate_pose(landmarks)
    size = float(min(box[2] - box[0], box[3] - box[1]))
    return FaceQuality(size=size, sharpness=sharpness, brightness=brightness, roll=roll, yaw=yaw, pitch=pitch)


def estimate_pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(roll, yaw, pitch) in degrees from 5 landmarks; positive yaw = nose towards image-right."""
    p = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eye_vec = p[1] - p[0]
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    # Undo roll so yaw/pitch read along the face's own axes.
    c, s = math.cos(-math.radians(roll)), math.sin(-math.radians(roll))
    rot = np.array([[c, -s], [s, c]])
    q = (p - p[0]) @ rot.T
    eye_mid = (q[0] + q[1]) / 2
    mouth_mid = (q[3] + q[4]) / 2
    half_eye = max(np.linalg.norm(q[1] - q[0]) / 2, 1e-6)
    yaw = math.degrees(math.asin(float(np.clip((q[2, 0] - eye_mid[0]) / half_eye, -1, 1))))
    span = mouth_mid[1] - eye_mid[1]
    ratio = (q[2, 1] - eye_mid[1]) / span if abs(span) > 1e-6 else _TEMPLATE_PITCH_RATIO
    pitch = math.degrees(math.asin(float(np.clip((_TEMPLATE_PITCH_RATIO - ratio) * 2.0, -1, 1))))
    return roll, yaw, pitch


def quality_reasons(quality: FaceQuality, confidence: float, level: QualityFilter | str) -> list[str]:
    """Rekognition's UnindexedFaces reasons this face fails at ``level`` (empty list = acceptable)."""
    level = QualityFilter(level)
    if level is QualityFilter.NONE:
        return []
    bar = QUALITY_BARS[level]
    reasons: list[str] = []
    if confidence < bar.min_confidence:
        reasons.append("LOW_CONFIDENCE")
    if quality.size < bar.min_size:
        reasons.append("SMALL_BOUNDING_BOX")
    if quality.sharpness < bar.min_sharpness:
        reasons.append("LOW_SHARPNESS")
    if quality.brightness < bar.min_brightness:
        reasons.append("LOW_BRIGHTNESS")
    if quality.brightness > bar.max_brightness:
        reasons.append("LOW_FACE_QUALITY")
    if abs(quality.yaw) > bar.max_abs_yaw or abs(quality.pitch) > bar.max_abs_pitch:
        reasons.append("EXTREME_POSE")
    return reasons
