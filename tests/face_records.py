"""FaceRecords for store tests: one per vector, ids ``face-NNNNNN`` numbered from ``start``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from facesearch.store.records import FaceRecord

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def face_records(vectors: Sequence[np.ndarray] | np.ndarray, start: int = 0) -> list[FaceRecord]:
    return [
        FaceRecord(
            face_id=f"face-{start + i:06d}",
            image_id="img",
            vector=v,
            bounding_box={"Width": 1.0, "Height": 1.0, "Left": 0.0, "Top": 0.0},
            confidence=99.0,
            indexed_at=T0,
        )
        for i, v in enumerate(vectors)
    ]
