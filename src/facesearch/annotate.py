"""Draw faces on an image so a person can check what the engine saw (boxes, landmarks, labels)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

GREEN = (40, 200, 60)
RED = (220, 50, 50)
YELLOW = (250, 210, 0)


def draw_faces(
    rgb: np.ndarray,
    boxes: Sequence[tuple[float, float, float, float]],
    landmarks: Sequence[np.ndarray] | None = None,
    labels: Sequence[str | None] | None = None,
    colors: Sequence[tuple[int, int, int]] | None = None,
) -> np.ndarray:
    """A copy of ``rgb`` with each box (and its landmarks and label) drawn on it."""
    out = rgb.copy()
    thickness = max(1, round(max(out.shape[:2]) / 800))
    for i, box in enumerate(boxes):
        color = colors[i] if colors else GREEN
        x1, y1, x2, y2 = (round(v) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
        if landmarks is not None:
            radius = max(1, round((x2 - x1) / 40))
            for x, y in np.asarray(landmarks[i]).reshape(-1, 2):
                cv2.circle(out, (round(x), round(y)), radius, YELLOW, -1)
        label = labels[i] if labels else None
        if label:
            scale = max(0.4, (x2 - x1) / 200)
            (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            top = max(y1 - th - 6, 0)
            cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + 6), color, -1)
            cv2.putText(out, label, (x1 + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def save_rgb(rgb: np.ndarray, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write image to {path}")
    return path
