"""Fit the distance → similarity scale to a measured false-match-rate curve (see engine/similarity.py).

The scale is defined by FMR(similarity) = ((100 − similarity) / 100)³, so fitting it means measuring, for a
grid of FMR levels, the distance at which that share of impostor pairs is reached: the knots of a
piecewise-linear curve log10 FMR(distance). Below the last level the data resolves (``min_pairs`` impostor
pairs), the curve continues as a straight line in log10 FMR fitted to the last two decades.
"""

from __future__ import annotations

import numpy as np

from facesearch.evaluation.metrics import BIN_WIDTH, PairScores

STEP_DECADES = 0.25
MIN_PAIRS = 20
TAIL_DECADES = 2.0


def impostor_quantile(scores: PairScores, k: float) -> float:
    """The distance within which ``k`` impostor pairs lie (interpolated; exact pairs where kept)."""
    k = max(k, 1.0)
    close = scores.impostor_close
    if k <= close.size:
        lo = int(np.floor(k)) - 1
        hi = min(lo + 1, close.size - 1)
        frac = k - np.floor(k)
        return float(close[lo] + frac * (close[hi] - close[lo])) if lo >= 0 else float(close[0])
    cum = np.cumsum(scores.impostor_hist)
    b = int(np.searchsorted(cum, k))
    before = cum[b - 1] if b else 0
    inside = scores.impostor_hist[b] if b < scores.impostor_hist.size else 1
    return float((b + (k - before) / max(inside, 1)) * BIN_WIDTH)


def fit_fmr_curve(scores: PairScores, *, min_pairs: int = MIN_PAIRS) -> dict:
    """Knots [(distance, log10 FMR)] from FMR 1 down to ``min_pairs`` impostor pairs, and the tail slope."""
    n = scores.impostor_pairs
    lowest = np.log10(min_pairs / n)
    levels = np.arange(0.0, lowest - 1e-9, -STEP_DECADES)
    knots: list[tuple[float, float]] = []
    for level in levels[::-1]:  # increasing distance
        d = round(impostor_quantile(scores, n * 10.0**level), 4)
        if not knots or d > knots[-1][0]:
            knots.append((d, round(float(level), 4)))
    tail = [(d, lv) for d, lv in knots if lv <= knots[0][1] + TAIL_DECADES]
    slope = float(np.polyfit([d for d, _ in tail], [lv for _, lv in tail], 1)[0]) if len(tail) > 1 else 10.0
    return {
        "knots": knots,
        "tail_slope_decades_per_distance": round(slope, 3),
        "impostor_pairs": n,
        "min_pairs": min_pairs,
    }
