"""From euclidean distance between dlib descriptors to Rekognition's 0–100 Similarity, as a measured error rate.

**The scale in one sentence:** a similarity of S means that a share ((100 − S)/100)³ of pairs of different
people score S or more — 90 is one pair in a thousand, 95 one in 8,000, 99 one in a million, measured over all
61.7 million impostor pairs of LFW (``facesearch eval ../shared/datasets/lfw``).

So similarity(d) = 100·(1 − FMR(d)^⅓), where FMR(d) is the share of LFW's impostor pairs within distance d:
a piecewise-linear curve in log10 FMR through the knots below (one every quarter decade, from FMR 1 down to
10^-6.25, the last level with at least 20 impostor pairs behind it), continued below the first knot as a
straight line fitted to the last two measured decades (21.3 decades per unit of distance). Similarities above
99.4 (FMR < 10⁻⁶) therefore rest on that extrapolation, not on counted pairs. The mapping is monotone
(strictly decreasing up to the largest impostor distance seen, 1.2185, and 0 beyond) and invertible.

The curve is LFW's, measured with this engine (FACE_MODEL_VERSION); a different model needs a new fit
(``similarity_fit`` in the eval report prints the knots). docs/similarity.md has the threshold ↔ FMR/FNMR table
and what the change means for similarities stored or audited before it (``legacy_to_current``).
"""

from __future__ import annotations

import math

import numpy as np

# (distance, log10 FMR) on LFW, all 61,734,473 impostor pairs of 11,115 photos; fitted by
# facesearch.evaluation.calibration.fit_fmr_curve (report key ``similarity_fit``).
FMR_CURVE: tuple[tuple[float, float], ...] = (
    (0.3658, -6.25),
    (0.3783, -6.0),
    (0.388, -5.75),
    (0.398, -5.5),
    (0.4093, -5.25),
    (0.4215, -5.0),
    (0.4338, -4.75),
    (0.4469, -4.5),
    (0.4609, -4.25),
    (0.476, -4.0),
    (0.4918, -3.75),
    (0.5084, -3.5),
    (0.5254, -3.25),
    (0.5424, -3.0),
    (0.5598, -2.75),
    (0.5773, -2.5),
    (0.5952, -2.25),
    (0.6136, -2.0),
    (0.633, -1.75),
    (0.6539, -1.5),
    (0.677, -1.25),
    (0.7032, -1.0),
    (0.7345, -0.75),
    (0.7745, -0.5),
    (0.8332, -0.25),
    (1.2185, 0.0),
)
TAIL_SLOPE = 21.327  # decades of FMR per unit distance, below the first knot
_D = np.array([d for d, _ in FMR_CURVE])
_L = np.array([lv for _, lv in FMR_CURVE])

# CompareFaces' default and the service's lowest floor: FMR 10⁻³ per comparison (one stranger in a thousand
# passes), at which LFW rejects 10.0 % of all same-person pairs (docs/similarity.md).
DEFAULT_THRESHOLD = 90.0

# The scale before this fit (logistic, 80 at distance 0.566, calibrated on faces-dev's 13 people).
_LEGACY_SCALE = 0.05
_LEGACY_D0 = 0.566 + _LEGACY_SCALE * math.log(100.0 / 80.0 - 1.0) * -1.0


def fmr_at_similarity(similarity: float) -> float:
    """The false-match rate per comparison that a similarity stands for: ((100 − S)/100)³."""
    if not 0.0 <= similarity <= 100.0:
        raise ValueError(f"similarity must be within [0, 100], got {similarity}")
    return ((100.0 - similarity) / 100.0) ** 3


def similarity_at_fmr(fmr: float) -> float:
    """The similarity that stands for ``fmr``: 100·(1 − FMR^⅓)."""
    if not 0.0 <= fmr <= 1.0:
        raise ValueError(f"fmr must be within [0, 1], got {fmr}")
    return 100.0 * (1.0 - fmr ** (1.0 / 3.0))


def log10_fmr_at_distance(distance: float | np.ndarray) -> np.ndarray:
    """log10 of LFW's false-match rate at ``distance``: the fitted curve, its straight tail below the knots."""
    d = np.asarray(distance, dtype=np.float64)
    out = np.interp(d, _D, _L)
    return np.where(d < _D[0], _L[0] - TAIL_SLOPE * (_D[0] - d), out)


def similarity_from_distance(distance: float | np.ndarray) -> float | np.ndarray:
    """0–100, higher is more alike; S means a share ((100 − S)/100)³ of impostor pairs are this close."""
    sim = 100.0 * (1.0 - np.power(10.0, log10_fmr_at_distance(distance) / 3.0))
    return float(sim) if np.ndim(sim) == 0 else sim


def distance_from_similarity(similarity: float) -> float:
    """Inverse of similarity_from_distance: the largest distance that still scores ≥ ``similarity``."""
    if not 0.0 <= similarity <= 100.0:
        raise ValueError(f"similarity must be within [0, 100], got {similarity}")
    if similarity >= 100.0:
        return 0.0
    if similarity <= 0.0:
        return math.inf
    level = 3.0 * math.log10(1.0 - similarity / 100.0)
    if level >= _L[0]:
        return float(np.interp(level, _L, _D))
    return max(float(_D[0] - (_L[0] - level) / TAIL_SLOPE), 0.0)


DEFAULT_MATCH_DISTANCE = distance_from_similarity(DEFAULT_THRESHOLD)


def legacy_to_current(legacy_similarity: float) -> float:
    """A similarity stored or audited under the old logistic scale, expressed on this one (same distance)."""
    if not 0.0 < legacy_similarity < 100.0:
        raise ValueError(f"legacy similarity must be within (0, 100), got {legacy_similarity}")
    distance = max(_LEGACY_D0 + _LEGACY_SCALE * math.log(100.0 / legacy_similarity - 1.0), 0.0)
    return float(similarity_from_distance(distance))
