"""Evaluation of the engine on a labelled folder (faces-dev, LFW, or any folder shaped like them).

Folder: ``images/``, ``identities.csv`` (image,identity; several identities joined by ';' for a group photo)
and optionally ``pairs.csv`` (image_a,image_b,same_person yes/no/1/0, optionally fold 0–9). Images not listed
in identities.csv, or listed with several identities, are treated as group photos. In a photo of one labelled
person that shows several faces, the labelled face is the one nearest the centre (LFW's convention) among the
faces at least half as wide as the widest.

The faces are described once per (dataset, model) and cached (``descriptors.py``); everything else is matrix
arithmetic over all pairs (``metrics.py``), so the report covers every impostor pair the dataset offers.
"""

from __future__ import annotations

import csv
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facesearch.collections import risk
from facesearch.engine.similarity import DEFAULT_MATCH_DISTANCE, distance_from_similarity, similarity_from_distance
from facesearch.evaluation import metrics
from facesearch.evaluation.calibration import MIN_PAIRS, fit_fmr_curve, holdout_check
from facesearch.evaluation.descriptors import DescribedSet, describe, model_fingerprint

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
REPORT_SIMILARITIES = (50.0, 80.0, 90.0, 95.0, 99.0, 99.9)
REPORT_FMRS = (1e-3, 1e-4, 1e-5, 1e-6)
IDENTIFICATION_SIMILARITIES = (80.0, 90.0, 95.0, 99.0)
DLIB_PUBLISHED_TAR = {"0.001": 0.960, "0.01": 0.995}  # dlib's LFW ROC (dlib.net, face recognition model v1)
MAX_STRANGERS = 2000
SEED = 0


@dataclass
class LabelledSet:
    root: Path
    identities: dict[str, list[str]]  # image → identities
    pairs: list[tuple[str, str, bool]]
    folds: list[int] | None = None

    @property
    def images(self) -> list[str]:
        found = {p.name for p in (self.root / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        return sorted(found, key=_natural_key)


def _natural_key(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def load_labelled_set(root: Path) -> LabelledSet:
    root = Path(root)
    ids_file = root / "identities.csv"
    if not (root / "images").is_dir() or not ids_file.is_file():
        raise FileNotFoundError(f"{root} must contain images/ and identities.csv")
    identities: dict[str, list[str]] = {}
    with ids_file.open(newline="") as f:
        for row in csv.DictReader(f):
            identities[row["image"]] = [s.strip() for s in row["identity"].split(";") if s.strip()]
    pairs: list[tuple[str, str, bool]] = []
    folds: list[int] = []
    pairs_file = root / "pairs.csv"
    if pairs_file.is_file():
        with pairs_file.open(newline="") as f:
            for row in csv.DictReader(f):
                same = row["same_person"].strip().lower() in ("yes", "1", "true")
                pairs.append((row["image_a"], row["image_b"], same))
                if row.get("fold") not in (None, ""):
                    folds.append(int(row["fold"]))
    return LabelledSet(root, identities, pairs, folds if folds and len(folds) == len(pairs) else None)


def labelled_face(d: DescribedSet, i: int) -> int | None:
    """Index of the labelled person's face in image ``i``: nearest the centre among the larger faces."""
    faces = d.faces_of(i)
    if faces.size == 0:
        return None
    if faces.size == 1:
        return int(faces[0])
    b = d.boxes[faces]
    w = b[:, 2] - b[:, 0]
    big = w >= 0.5 * w.max()
    cx, cy = (b[:, 0] + b[:, 2]) / 2 - d.widths[i] / 2, (b[:, 1] + b[:, 3]) / 2 - d.heights[i] / 2
    off = np.where(big, cx**2 + cy**2, np.inf)
    return int(faces[int(np.argmin(off))])


def evaluate(
    root: Path,
    engine: object | None = None,
    *,
    match_distance: float = DEFAULT_MATCH_DISTANCE,
    use_cache: bool = True,
    progress: bool = False,
    plots_dir: Path | None = None,
) -> dict:
    """The full report as a JSON-ready dict. ``engine`` is built (FaceEngine()) only if the cache misses."""
    started = time.perf_counter()
    data = load_labelled_set(root)

    def factory() -> object:
        if engine is not None:
            return engine
        from facesearch.engine.engine import FaceEngine

        return FaceEngine()

    fingerprint = model_fingerprint(engine) if hasattr(engine, "min_face_size") else None
    described = describe(
        data.root, data.images, factory, use_cache=use_cache, progress=progress, fingerprint=fingerprint
    )
    described_at = time.perf_counter()

    index = {n: i for i, n in enumerate(described.images)}
    singles = [n for n in described.images if len(data.identities.get(n, [])) == 1]
    groups = [n for n in described.images if len(data.identities.get(n, [])) != 1]
    chosen = {n: labelled_face(described, index[n]) for n in singles}
    names = [n for n in singles if chosen[n] is not None]
    no_face = sorted((n for n in singles if chosen[n] is None and n not in described.errors), key=_natural_key)
    rows = [i for n in names if (i := chosen[n]) is not None]
    x = described.descriptors[rows] if names else np.zeros((0, 128), np.float32)
    person = [data.identities[n][0] for n in names]
    _, labels = np.unique(np.asarray(person), return_inverse=True) if names else (None, np.zeros(0, np.int64))
    row_of = {n: k for k, n in enumerate(names)}

    ms = described.ms_per_image
    report: dict = {
        "dataset": str(data.root),
        "images": len(described.images),
        "faces": len(described.descriptors),
        "labelled_faces": len(names),
        "identities": len(set(person)),
        "errors": described.errors,
        "no_face": no_face,
        "match_distance": match_distance,
        "match_similarity": round(float(similarity_from_distance(match_distance)), 3),
        "descriptors_from_cache": described.from_cache,
        "describe_seconds": round(described_at - started, 2),
        "ms_per_image_p50": round(float(np.median(ms)), 1) if ms.size else None,
        "ms_per_image_p95": round(float(np.percentile(ms, 95)), 1) if ms.size else None,
    }
    report.update(_protocol_pairs(data, row_of, x, match_distance))

    scores = metrics.score_all_pairs(x, labels, keep_below=max(match_distance, 0.62))
    report.update(_all_pairs(scores, names, x, labels))
    report["similarity_fit"] = fit_fmr_curve(scores) if scores.impostor_pairs >= 10 * MIN_PAIRS else None
    if scores.impostor_pairs >= 1_000_000:  # enough pairs on each half to say something at 1e-5
        report["similarity_fit_holdout"] = holdout_check(x, labels, REPORT_FMRS)

    correct, total, missed = metrics.rank1_leave_one_out(x, labels)
    report.update(rank1=correct, rank1_total=total, rank1_misses=[names[k] for k in missed[:200]])
    report.update(_leave_person_out(x, labels, names, match_distance))
    report["identification"] = _identification(x, labels, scores)
    report.update(_group_photos(data, described, groups, index, names, x, person, match_distance))
    report["metrics_seconds"] = round(time.perf_counter() - described_at, 2)
    if plots_dir is not None:
        from facesearch.evaluation.plots import write_plots

        report["plots"] = [str(p) for p in write_plots(scores, report, Path(plots_dir))]
    report["total_seconds"] = round(time.perf_counter() - started, 2)
    return report


def _protocol_pairs(data: LabelledSet, row_of: dict[str, int], x: np.ndarray, match_distance: float) -> dict:
    """The dataset's own pair list: accuracy at the shipped threshold, the best cut, and ten-fold if folds."""
    keep = [k for k, (a, b, _) in enumerate(data.pairs) if a in row_of and b in row_of]
    if not keep:
        return {}
    a = x[[row_of[data.pairs[k][0]] for k in keep]]
    b = x[[row_of[data.pairs[k][1]] for k in keep]]
    d = np.linalg.norm(a - b, axis=1)
    same = np.array([data.pairs[k][2] for k in keep])
    predicted = d <= match_distance
    best_acc, best_cut = metrics.best_threshold(d, same)
    bar = accuracy_interval(d, same, 0.996)
    out = {
        "pairs": len(data.pairs),
        "pairs_scored": len(keep),
        "pairs_accuracy": round(float((predicted == same).mean()), 5),
        "pairs_false_accepts": int((predicted & ~same).sum()),
        "pairs_false_rejects": int((~predicted & same).sum()),
        "pairs_best_accuracy": round(best_acc, 5),
        "pairs_best_distance": round(best_cut, 4),
        "pairs_996_no_false_accept_range": [round(v, 4) for v in bar] if bar else None,
        "same_distance_max": round(float(d[same].max()), 4) if same.any() else None,
        "different_distance_min": round(float(d[~same].min()), 4) if (~same).any() else None,
        "pairs_tar_at_far": {far: metrics.tar_at_far(d, same, float(far)) for far in DLIB_PUBLISHED_TAR},
    }
    if data.folds is not None:
        folds = np.array([data.folds[k] for k in keep])
        out.update(metrics.ten_fold(d, same, folds))
    return out


def accuracy_interval(distances: np.ndarray, same: np.ndarray, bar: float) -> tuple[float, float] | None:
    """[lo, hi): the thresholds t at which the cut ``d ≤ t`` reaches accuracy ≥ ``bar`` while accepting no
    different-person pair; None if no t does. ``lo`` is an observed distance, ``hi`` the smallest impostor one.
    """
    different = distances[~same]
    hi = float(different.min()) if different.size else float("inf")
    ok = [t for t in np.unique(distances[same]) if t < hi and ((distances <= t) == same).mean() >= bar]
    return (float(min(ok)), hi) if ok else None


def _all_pairs(scores: metrics.PairScores, names: list[str], x: np.ndarray, labels: np.ndarray) -> dict:
    """FMR/FNMR over every pair the dataset offers, at fixed similarities and at fixed FMRs, with the counts."""
    rows = [metrics.error_rate_row(scores, distance_from_similarity(s), s) for s in REPORT_SIMILARITIES]
    at_fmr = []
    for target in REPORT_FMRS:
        dist = scores.distance_at_fmr(target)
        row = metrics.error_rate_row(scores, dist, float(similarity_from_distance(dist)))
        row["target_fmr"] = target
        row["resolvable"] = target * scores.impostor_pairs >= 10  # fewer than 10 errors expected: noise
        at_fmr.append(row)
    closest = [
        {"a": names[i], "b": names[j], "distance": round(float(dd), 4)}
        for (i, j), dd in zip(scores.impostor_close_pairs[:10], scores.impostor_close[:10], strict=True)
    ]
    return {
        "impostor_pairs": scores.impostor_pairs,
        "genuine_pairs": scores.genuine_pairs,
        "error_rates": rows,
        "error_rates_at_fmr": at_fmr,
        "tar_at_far": {
            "all_pairs": {far: _tar_from_scores(scores, float(far)) for far in DLIB_PUBLISHED_TAR},
            "dlib_published": DLIB_PUBLISHED_TAR,
        },
        "closest_impostor_pairs": closest,
    }


def _tar_from_scores(scores: metrics.PairScores, far: float) -> float:
    return 1.0 - scores.fnmr(scores.distance_at_fmr(far))


def _leave_person_out(x: np.ndarray, labels: np.ndarray, names: list[str], match_distance: float) -> dict:
    """Each face searched in a gallery of everyone else's faces: any match at the threshold is a false accept."""
    if not len(x):
        return {"open_set_false_accepts": 0, "open_set_trials": 0, "open_set_false_accept_list": []}
    sq = metrics._sq_norms(x)
    nearest = np.empty(len(x), np.float32)
    for rows in metrics.row_blocks(len(x), 1024):
        d = metrics.distance_block(x[rows], x, sq[rows], sq)
        d[labels[rows][:, None] == labels[None, :]] = np.inf
        nearest[rows] = d.min(axis=1)
    bad = np.nonzero(nearest <= match_distance)[0]
    return {
        "open_set_false_accepts": int(bad.size),
        "open_set_trials": len(x),
        "open_set_false_accept_list": [
            {"probe": names[k], "distance": round(float(nearest[k]), 4)} for k in bad[np.argsort(nearest[bad])][:200]
        ],
        "open_set_nearest_stranger_min": round(float(nearest.min()), 4) if np.isfinite(nearest.min()) else None,
    }


def gallery_sizes(total: int) -> list[int]:
    sizes = [s for s in (100, 300, 1000, 3000) if s < total]
    return [*sizes, total]


def split_open_set(labels: np.ndarray, *, seed: int = SEED, max_strangers: int = MAX_STRANGERS) -> dict:
    """Gallery (one photo per person, shuffled), mated probes (their other photos), strangers (never enrolled).

    Strangers are people with a single photo (half of them, at most ``max_strangers``), so no stranger ever
    has a photo in any gallery. The gallery order is shuffled once; a gallery of size G is its first G entries.
    """
    rng = np.random.default_rng(seed)
    first: dict[int, int] = {}
    for k, lab in enumerate(labels.tolist()):
        first.setdefault(lab, k)
    counts = np.bincount(labels) if labels.size else np.zeros(0, np.int64)
    singles = np.array([p for p in first if counts[p] == 1], np.int64)
    strangers_people = rng.permutation(singles)[: min(max_strangers, singles.size // 2)]
    is_stranger = np.zeros(counts.size, bool)
    is_stranger[strangers_people] = True
    people = rng.permutation(np.array([p for p in first if not is_stranger[p]], np.int64))
    gallery = np.array([first[p] for p in people], np.int64)
    pos_of_person = {int(p): k for k, p in enumerate(people)}
    mated = np.array([k for k, lab in enumerate(labels.tolist()) if lab in pos_of_person and first[lab] != k], np.int64)
    mated_pos = np.array([pos_of_person[int(labels[k])] for k in mated], np.int64)
    strangers = np.array([first[int(p)] for p in strangers_people], np.int64)
    return {"gallery": gallery, "mated": mated, "mated_pos": mated_pos, "strangers": strangers}


def _identification(x: np.ndarray, labels: np.ndarray, scores: metrics.PairScores) -> dict:
    """Open-set 1:N on nested galleries, measured, next to the independent-comparisons model 1 − (1 − FMR)^G."""
    if not len(x):
        return {}
    split = split_open_set(labels)
    os_ = metrics.open_set(x, split["gallery"], split["mated"], split["mated_pos"], split["strangers"])
    rows = []
    for size in gallery_sizes(os_.gallery_size):
        for s in IDENTIFICATION_SIMILARITIES:
            dist = distance_from_similarity(s)
            row = {"similarity": s, "distance": round(dist, 5), **os_.at(size, dist)}
            fmr = scores.fmr(dist)
            row["fmr"] = fmr
            row["predicted_fpir"] = metrics.predicted_any(fmr, size)
            row["predicted_false_candidates_per_search"] = fmr * size
            rows.append(row)
    budget_rows = []
    for size in sorted({s for s in (100, 1000, os_.gallery_size) if s <= os_.gallery_size}):
        t = risk.budgeted_threshold(size, budget=risk.DEFAULT_BUDGET, floor=0.0)
        dist = distance_from_similarity(t)
        row = {"similarity": t, "distance": round(dist, 5), **os_.at(size, dist)}
        row["budget"] = risk.DEFAULT_BUDGET
        row["fmr"] = scores.fmr(dist)
        row["predicted_false_candidates_per_search"] = risk.expected_false_candidates(t, size)
        row["predicted_fpir"] = risk.probability_of_any_false_candidate(t, size)
        budget_rows.append(row)
    return {
        "budget_default": budget_rows,
        "extrapolation": _extrapolate(os_, scores),
        "gallery_people": os_.gallery_size,
        "stranger_searches": len(split["strangers"]),
        "mated_searches": len(split["mated"]),
        "seed": SEED,
        "rows": rows,
    }


EXTRAPOLATE_TO = (300_000, 20_000_000)


def _extrapolate(os_: metrics.OpenSet, scores: metrics.PairScores) -> list[dict]:
    """Galleries larger than the dataset: N·FMR and 1 − (1 − FMR)^N at each threshold and at the budgeted
    default; FNIR (the mate not among the candidates) does not depend on N, so LFW's measured value stands."""
    full = os_.gallery_size
    out = []
    for size in EXTRAPOLATE_TO:
        budgeted = risk.budgeted_threshold(size, budget=risk.DEFAULT_BUDGET, floor=0.0)
        for s in (*IDENTIFICATION_SIMILARITIES, budgeted):
            dist = distance_from_similarity(s)
            fmr = scores.fmr(dist)
            out.append(
                {
                    "gallery_size": size,
                    "similarity": s,
                    "budgeted_default": s == budgeted,
                    "fmr_measured": fmr,
                    "fmr_scale": risk.fmr_at_similarity(s),
                    "expected_false_candidates_per_search": size * risk.fmr_at_similarity(s),
                    "predicted_fpir": risk.probability_of_any_false_candidate(s, size),
                    "fnir_measured": os_.at(full, dist)["fnir"],
                }
            )
    return out


def _group_photos(
    data: LabelledSet,
    described: DescribedSet,
    groups: list[str],
    index: dict[str, int],
    names: list[str],
    x: np.ndarray,
    person: list[str],
    match_distance: float,
) -> dict:
    """Group photos: gallery = the first photo of each identity; each face found must be a labelled person."""
    first: dict[str, int] = {}
    for k, p in enumerate(person):
        first.setdefault(p, k)
    g_names = list(first)
    g_matrix = x[[first[p] for p in g_names]] if g_names else np.zeros((0, 128), np.float32)
    identified, labelled, group_report = 0, 0, {}
    for n in groups:
        if n in described.errors:
            continue
        truth = set(data.identities.get(n, []))
        labelled += len(truth)
        found: list[dict] = []
        faces = described.faces_of(index[n])
        for f in faces:
            if not g_names:
                break
            d = np.linalg.norm(g_matrix - described.descriptors[f], axis=1)
            k = int(np.argmin(d))
            if d[k] <= match_distance:
                found.append(
                    {
                        "identity": g_names[k],
                        "distance": round(float(d[k]), 4),
                        "similarity": round(float(similarity_from_distance(d[k])), 2),
                        "box": [round(float(v), 1) for v in described.boxes[f]],
                    }
                )
        found_ids = {f["identity"] for f in found}
        identified += len(found_ids & truth) if truth else len(found)
        group_report[n] = {"faces": int(faces.size), "labelled": sorted(truth), "matches": found}
    return {"group_faces_identified": identified, "group_faces_labelled": labelled, "groups": group_report}
