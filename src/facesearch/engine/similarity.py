"""From euclidean distance between dlib descriptors to Rekognition's 0–100 Similarity.

Mapping (documented, monotone, invertible):  similarity(d) = 100 / (1 + exp((d − d₀) / s))
with s = 0.05 and d₀ chosen so that similarity(DEFAULT_MATCH_DISTANCE) = 80 — Rekognition's default
FaceMatchThreshold. So "threshold 80" means "dlib distance ≤ the calibrated same-person distance", and a
stricter identification threshold of 99 means distance ≤ DEFAULT_MATCH_DISTANCE − 0.16.

DEFAULT_MATCH_DISTANCE is calibrated on faces-dev with `facesearch eval` (BENCHMARKS.md has the numbers):
the centre of the range of distances at which pair accuracy stays ≥ 99.6% (the acceptance bar) without
accepting any different-person pair. On faces-dev that range is [0.554, 0.579): below it too many true
pairs are rejected, above it the first different-person pair is accepted. The centre keeps the widest
margin on both sides, rather than sitting on the best single cut (0.577), which a small change in
alignment would tip over. Open-set false accepts at this distance are reported by eval; the main one is a
pair of look-alike actors at 0.514, which no threshold that keeps pair accuracy can exclude: the reason
for review flags and threshold floors.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_MATCH_DISTANCE = 0.566
DEFAULT_THRESHOLD = 80.0
SCALE = 0.05
D0 = DEFAULT_MATCH_DISTANCE + SCALE * math.log(100.0 / DEFAULT_THRESHOLD - 1.0) * -1.0


def similarity_from_distance(distance: float | np.ndarray) -> float | np.ndarray:
    """0–100, higher is more alike."""
    z = (np.asarray(distance, dtype=np.float64) - D0) / SCALE
    sim = 100.0 / (1.0 + np.exp(np.clip(z, -700, 700)))
    return float(sim) if np.ndim(sim) == 0 else sim


def distance_from_similarity(similarity: float) -> float:
    """Inverse of similarity_from_distance: the largest distance that still scores ≥ ``similarity``."""
    if not 0.0 <= similarity <= 100.0:
        raise ValueError(f"similarity must be within [0, 100], got {similarity}")
    if similarity >= 100.0:
        return 0.0
    if similarity <= 0.0:
        return math.inf
    return max(D0 + SCALE * math.log(100.0 / similarity - 1.0), 0.0)
