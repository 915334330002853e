"""Plain records the vector stores persist; the collection service turns them into Rekognition shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

DIMENSION = 128


@dataclass(frozen=True)
class CollectionRecord:
    """A collection's settings. ``threshold_floor`` is the lowest FaceMatchThreshold a caller may ask for."""

    collection_id: str
    created_at: datetime
    face_model_version: str
    threshold_floor: float = 80.0
    review_required: bool = True
    # Expected false candidates per search of a stranger that the default threshold allows at the collection's
    # size (collections/risk.py); None: the service's budget (FACESEARCH_FALSE_CANDIDATE_BUDGET).
    false_candidate_budget: float | None = None


@dataclass(frozen=True)
class FaceRecord:
    """One indexed face: its descriptor and the metadata Rekognition returns with it.

    ``bounding_box`` uses Rekognition's ratios: {"Width", "Height", "Left", "Top"} in [0, 1] of the image.
    ``source`` says where the image came from (an s3:// URI, or "sha256:<hex>" of uploaded bytes) so a
    reviewer can trace a match back to its evidence.
    """

    face_id: str
    image_id: str
    vector: np.ndarray
    bounding_box: dict[str, float]
    confidence: float
    indexed_at: datetime
    external_image_id: str | None = None
    user_id: str | None = None
    source: str | None = None
    quality: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class UserRecord:
    """A Rekognition user: an identity that groups faces. Status is CREATED until a face is associated."""

    user_id: str
    created_at: datetime
    status: str = "CREATED"


@dataclass(frozen=True)
class Neighbor:
    """A search hit with its exact euclidean distance (never the ANN engine's approximate score)."""

    face: FaceRecord
    distance: float
