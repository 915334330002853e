"""Error-rate arithmetic on face descriptors: all pairs by blocks of matrix products, ten-fold accuracy, open set.

Pure numpy, no models: tests feed synthetic descriptors. Memory stays bounded whatever the number of faces:
distances are computed ``block`` rows at a time (``block × N`` floats), impostor distances are kept as a
histogram (exact counts per bin of 10⁻⁴) plus the exact distances of the closest impostor pairs, which is all
low false-match rates need.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

BIN_WIDTH = 1e-4
MAX_DISTANCE = 2.5  # dlib descriptors have norm ≈ 1, so no distance reaches this; larger ones land in the last bin


def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x, dtype=np.float64).astype(np.float32)


def distance_block(a: np.ndarray, b: np.ndarray, a_sq: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``a`` and ``b`` via one matrix product (float32)."""
    d2 = a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    np.maximum(d2, 0.0, out=d2)
    return np.sqrt(d2, out=d2)


def row_blocks(n: int, block: int) -> Iterator[slice]:
    for start in range(0, n, block):
        yield slice(start, min(start + block, n))


@dataclass
class PairScores:
    """Every unordered pair of distinct faces, split by label: genuine (same person) and impostor (different).

    Genuine distances are kept exactly (a person has few photos). Impostor pairs are tens of millions, so only
    their histogram is kept, plus the exact distances (and indices) of those at or below ``keep_below``.
    """

    genuine: np.ndarray  # all genuine distances, sorted
    impostor_hist: np.ndarray  # counts per bin of BIN_WIDTH
    impostor_close: np.ndarray  # exact impostor distances ≤ keep_below, sorted
    impostor_close_pairs: np.ndarray  # (k, 2) indices of those pairs, in the same order
    keep_below: float

    @property
    def impostor_pairs(self) -> int:
        return int(self.impostor_hist.sum())

    @property
    def genuine_pairs(self) -> int:
        return int(self.genuine.size)

    def false_matches(self, distance: float) -> int:
        """Impostor pairs at distance ≤ ``distance``: exact below ``keep_below``, to one bin above it."""
        if distance <= self.keep_below:
            return int(np.searchsorted(self.impostor_close, distance, side="right"))
        edge = int(np.floor(distance / BIN_WIDTH + 1e-9))  # bins fully at or below the distance
        return int(self.impostor_hist[: min(edge, self.impostor_hist.size)].sum())

    def fmr(self, distance: float) -> float:
        return self.false_matches(distance) / max(self.impostor_pairs, 1)

    def false_non_matches(self, distance: float) -> int:
        return int(self.genuine.size - np.searchsorted(self.genuine, distance, side="right"))

    def fnmr(self, distance: float) -> float:
        return self.false_non_matches(distance) / max(self.genuine_pairs, 1)

    def distance_at_fmr(self, target: float) -> float:
        """The largest distance whose FMR stays ≤ ``target``: just below the (⌊target·N⌋+1)-th closest impostor.

        Exact while that impostor is among the kept close pairs; otherwise the lower edge of its histogram bin.
        """
        allowed = int(np.floor(target * self.impostor_pairs + 1e-9))
        if allowed < self.impostor_close.size:
            nxt = float(self.impostor_close[allowed])
            return float(np.nextafter(np.float32(nxt), np.float32(0)))
        cum = np.cumsum(self.impostor_hist)
        b = int(np.searchsorted(cum, allowed, side="right"))  # first bin that would exceed the allowance
        return max(b * BIN_WIDTH - 1e-9, 0.0)


def score_all_pairs(
    x: np.ndarray, labels: Sequence[int] | np.ndarray, *, keep_below: float = 0.6, block: int = 1024
) -> PairScores:
    """Distances of every unordered pair of rows of ``x``, by blocks of ``block`` rows (memory O(block·N))."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    lab = np.asarray(labels)
    n = len(x)
    sq = _sq_norms(x)
    nbins = int(np.ceil(MAX_DISTANCE / BIN_WIDTH)) + 1
    hist = np.zeros(nbins, np.int64)
    genuine: list[np.ndarray] = []
    close_d: list[np.ndarray] = []
    close_ij: list[np.ndarray] = []
    for rows in row_blocks(n, block):
        cols = slice(rows.start, n)  # upper triangle: pairs (i, j) with j > i
        d = distance_block(x[rows], x[cols], sq[rows], sq[cols])
        i_idx = np.arange(rows.start, rows.stop)[:, None]
        j_idx = np.arange(cols.start, n)[None, :]
        upper = j_idx > i_idx
        same = lab[rows][:, None] == lab[cols][None, :]
        genuine.append(d[upper & same])
        imp = upper & ~same
        dv = d[imp]
        hist += np.bincount(np.minimum((dv / BIN_WIDTH).astype(np.int64), nbins - 1), minlength=nbins)
        close = imp & (d <= keep_below)
        if close.any():
            ii, jj = np.nonzero(close)
            close_d.append(d[ii, jj])
            close_ij.append(np.stack([ii + rows.start, jj + cols.start], axis=1))
    g = np.sort(np.concatenate(genuine)) if genuine else np.zeros(0, np.float32)
    cd = np.concatenate(close_d) if close_d else np.zeros(0, np.float32)
    cij = np.concatenate(close_ij) if close_ij else np.zeros((0, 2), np.int64)
    order = np.argsort(cd, kind="stable")
    return PairScores(g, hist, cd[order], cij[order], keep_below)


def error_rate_row(scores: PairScores, distance: float, similarity: float) -> dict:
    fm = scores.false_matches(distance)
    fnm = scores.false_non_matches(distance)
    return {
        "similarity": round(float(similarity), 4),
        "distance": round(float(distance), 5),
        "fmr": fm / max(scores.impostor_pairs, 1),
        "fnmr": fnm / max(scores.genuine_pairs, 1),
        "false_matches": fm,
        "impostor_pairs": scores.impostor_pairs,
        "false_non_matches": fnm,
        "genuine_pairs": scores.genuine_pairs,
    }


def best_threshold(distances: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(accuracy, distance) of the best same-person cut ``d ≤ t``; the smallest t wins ties."""
    order = np.argsort(distances, kind="stable")
    d, s = distances[order], same[order]
    tp = np.cumsum(s)
    fp = np.cumsum(~s)
    tn = (~s).sum() - fp
    acc = np.concatenate([[(~s).sum()], tp + tn]) / len(d)
    best = int(np.argmax(acc))
    cut = 0.0 if best == 0 else float(d[best - 1])
    return float(acc[best]), cut


def ten_fold(distances: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    """LFW's protocol: the threshold is chosen on nine folds and tested on the tenth; mean ± std over folds.

    The cut for the training folds is the midpoint between the best cut and the next distance, so it does not
    sit on a training pair. std is the sample standard deviation (ddof=1), as the LFW results page reports.
    """
    accs, cuts = [], []
    for k in np.unique(folds):
        train, test = folds != k, folds == k
        _, cut = best_threshold(distances[train], same[train])
        above = np.sort(distances[train][distances[train] > cut])
        if above.size:
            cut = (cut + float(above[0])) / 2
        cuts.append(cut)
        accs.append(float(((distances[test] <= cut) == same[test]).mean()))
    a = np.asarray(accs)
    return {
        "tenfold_accuracy_mean": float(a.mean()),
        "tenfold_accuracy_std": float(a.std(ddof=1)) if a.size > 1 else 0.0,
        "tenfold_accuracies": [round(v, 5) for v in accs],
        "tenfold_distances": [round(v, 5) for v in cuts],
    }


def tar_at_far(distances: np.ndarray, same: np.ndarray, far: float) -> float:
    """True accept rate at the largest distance whose false accept rate on these pairs stays ≤ ``far``."""
    imp = np.sort(distances[~same])
    allowed = int(np.floor(far * imp.size + 1e-9))
    cut = imp[allowed] if allowed < imp.size else np.inf
    return float((distances[same] < cut).mean())


def rank1_leave_one_out(x: np.ndarray, labels: np.ndarray, *, block: int = 1024) -> tuple[int, int, np.ndarray]:
    """(correct, probes, missed indices): each face searched against all others; the nearest must be its person.

    Only faces whose person has another face count as probes: a singleton has no mate to find.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    sq = _sq_norms(x)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    probe = counts[inverse] > 1
    correct, missed = 0, []
    for rows in row_blocks(len(x), block):
        d = distance_block(x[rows], x, sq[rows], sq)
        d[np.arange(d.shape[0]), np.arange(rows.start, rows.stop)] = np.inf
        nearest = np.argmin(d, axis=1)
        hit = labels[nearest] == labels[rows]
        p = probe[rows]
        correct += int((hit & p).sum())
        missed.extend((np.nonzero(p & ~hit)[0] + rows.start).tolist())
    return correct, int(probe.sum()), np.asarray(missed, np.int64)


@dataclass
class OpenSet:
    """Open-set identification with nested galleries (the first G entries of one shuffled gallery order).

    ``stranger_d``: (S, G) distances of each stranger probe to the gallery, in gallery order.
    ``mate_pos``: for each mated probe, the position of its person's photo in the gallery order.
    ``mate_d``: its distance to that photo. ``nonmate_prefix_min``: (P, G) running minimum of its distances to
    the other gallery photos, in gallery order (so entry G-1 is the nearest non-mate in a gallery of size G).
    """

    stranger_d: np.ndarray
    mate_pos: np.ndarray
    mate_d: np.ndarray
    nonmate_prefix_min: np.ndarray

    @property
    def gallery_size(self) -> int:
        return int(self.stranger_d.shape[1])

    def at(self, size: int, distance: float) -> dict:
        """FPIR, false candidates per stranger search, FNIR and rank-1 TPIR for a gallery of ``size``."""
        strangers = self.stranger_d[:, :size]
        hits = (strangers <= distance).sum(axis=1)
        mated = self.mate_pos < size
        md = self.mate_d[mated]
        nm = self.nonmate_prefix_min[mated, size - 1] if mated.any() else np.zeros(0)
        found = md <= distance
        rank1 = found & (md < nm)
        n_mated = int(mated.sum())
        return {
            "gallery_size": int(size),
            "stranger_searches": int(strangers.shape[0]),
            "fpir": float((hits > 0).mean()) if hits.size else 0.0,
            "false_candidates_per_search": float(hits.mean()) if hits.size else 0.0,
            "mated_searches": n_mated,
            "fnir": float(1 - found.mean()) if n_mated else None,
            "tpir_rank1": float(rank1.mean()) if n_mated else None,
        }


def open_set(
    x: np.ndarray, gallery: np.ndarray, mated: np.ndarray, mated_gallery_pos: np.ndarray, strangers: np.ndarray
) -> OpenSet:
    """Distances for open-set identification; ``gallery``, ``mated`` and ``strangers`` index rows of ``x``.

    ``mated_gallery_pos[k]`` is the position in ``gallery`` of mated probe k's person. Memory: O((S + P)·G).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    g = x[gallery]
    g_sq = _sq_norms(g)
    s = x[strangers]
    stranger_d = distance_block(s, g, _sq_norms(s), g_sq) if len(s) else np.zeros((0, len(g)), np.float32)
    p = x[mated]
    mate_d = np.zeros(len(p), np.float32)
    prefix = np.zeros((len(p), len(g)), np.float32)
    p_sq = _sq_norms(p) if len(p) else np.zeros(0, np.float32)
    for rows in row_blocks(len(p), 1024):
        d = distance_block(p[rows], g, p_sq[rows], g_sq)
        pos = mated_gallery_pos[rows]
        r = np.arange(d.shape[0])
        mate_d[rows] = d[r, pos]
        d[r, pos] = np.inf
        prefix[rows] = np.minimum.accumulate(d, axis=1)
    return OpenSet(stranger_d, np.asarray(mated_gallery_pos), mate_d, prefix)


def predicted_any(fmr: float, size: int) -> float:
    """P(at least one false candidate) if each of ``size`` comparisons independently falsely matches at ``fmr``."""
    return float(-np.expm1(size * np.log1p(-min(fmr, 1.0 - 1e-16))))
