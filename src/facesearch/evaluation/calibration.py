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


def holdout_check(
    x: np.ndarray, labels: np.ndarray, targets: tuple[float, ...], *, seed: int = 0, keep_below: float = 0.62
) -> list[dict]:
    """Out-of-sample check of a fit: people split in two halves; for each target FMR, the distance that gives it
    on half A, and the FMR measured at that distance on half B (whose people A never saw)."""
    from facesearch.evaluation.metrics import score_all_pairs

    people = np.unique(labels)
    half = np.random.default_rng(seed).permutation(people)[: people.size // 2]
    in_a = np.isin(labels, half)
    a = score_all_pairs(x[in_a], labels[in_a], keep_below=keep_below)
    b = score_all_pairs(x[~in_a], labels[~in_a], keep_below=keep_below)
    out = []
    for target in targets:
        d = a.distance_at_fmr(target)
        out.append(
            {
                "target_fmr": target,
                "distance_fitted_on_a": round(d, 5),
                "fmr_on_b": b.fmr(d),
                "false_matches_on_b": b.false_matches(d),
                "impostor_pairs_b": b.impostor_pairs,
            }
        )
    return out
