"""What the engine returns: plain data, no model runtime behind it.

The collection service, the stores and the Rekognition shapes (collections/shapes.py) import these types
without importing onnxruntime or OpenCV, so a process that lists or deletes faces loads no model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum

import numpy as np

from facesearch.engine.decode import DecodedImage

FACE_MODEL_VERSION = "facesearch-mtcnn-dlibresnet-1.0"


class QualityFilter(StrEnum):
    NONE = "NONE"
    AUTO = "AUTO"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


@dataclass(frozen=True)
class FaceQuality:
    size: float
    sharpness: float
    brightness: float
    roll: float
    yaw: float
    pitch: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 3) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Face:
    """One detected face in image pixel coordinates (x1, y1, x2, y2), with its quality and (optionally) its
    descriptor. ``landmarks`` are the five points eyeLeft, eyeRight, nose, mouthLeft, mouthRight in pixels."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    confidence: float
    quality: FaceQuality
    descriptor: np.ndarray | None = None
    rejected_reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnalyzedImage:
    image: DecodedImage
    faces: list[Face] = field(default_factory=list)

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height
