"""Accuracy evaluation of the engine on a labelled folder (faces-dev or any folder shaped like it).

Folder: ``images/``, ``identities.csv`` (image,identity; several identities joined by ';' for a group photo)
and optionally ``pairs.csv`` (image_a,image_b,same_person yes/no). Images not listed in identities.csv, or
listed with several identities, are treated as group photos.
"""

from __future__ import annotations

import csv
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facesearch.engine.engine import AnalyzedImage, FaceEngine
from facesearch.engine.similarity import DEFAULT_MATCH_DISTANCE, similarity_from_distance
from facesearch.errors import FaceSearchError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass
class LabelledSet:
    root: Path
    identities: dict[str, list[str]]  # image → identities
    pairs: list[tuple[str, str, bool]]

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
    pairs_file = root / "pairs.csv"
    if pairs_file.is_file():
        with pairs_file.open(newline="") as f:
            for row in csv.DictReader(f):
                same = row["same_person"].strip().lower() in ("yes", "1", "true")
                pairs.append((row["image_a"], row["image_b"], same))
    return LabelledSet(root, identities, pairs)


def best_threshold(distances: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(accuracy, distance) of the best same-person cut ``d ≤ t``; the smallest t wins ties."""
    order = np.argsort(distances, kind="stable")
    d, s = distances[order], same[order]
    # Cut after position i: first i+1 predicted same.
    tp = np.cumsum(s)
    fp = np.cumsum(~s)
    tn = (~s).sum() - fp
    acc = np.concatenate([[(~s).sum()], tp + tn]) / len(d)
    best = int(np.argmax(acc))
    cut = 0.0 if best == 0 else float(d[best - 1])
    return float(acc[best]), cut


def accuracy_interval(distances: np.ndarray, same: np.ndarray, bar: float) -> tuple[float, float] | None:
    """[lo, hi): the thresholds t at which the cut ``d ≤ t`` reaches accuracy ≥ ``bar`` while accepting no
    different-person pair (a false accept is the costly error in identification); None if no t does.

    Accuracy only changes at observed distances, so ``lo`` is an observed distance and ``hi`` is the smallest
    different-person distance.
    """
    different = distances[~same]
    hi = float(different.min()) if different.size else float("inf")
    ok = [t for t in np.unique(distances[same]) if t < hi and ((distances <= t) == same).mean() >= bar]
    return (float(min(ok)), hi) if ok else None


def evaluate(
    root: Path,
    engine: FaceEngine,
    *,
    match_distance: float = DEFAULT_MATCH_DISTANCE,
    progress: Callable[[str], None] | None = None,
) -> dict:
    data = load_labelled_set(root)
    analyzed: dict[str, AnalyzedImage] = {}
    errors: dict[str, str] = {}
    timings: list[float] = []
    for name in data.images:
        raw = (data.root / "images" / name).read_bytes()
        start = time.perf_counter()
        try:
            analyzed[name] = engine.analyze(raw)
        except FaceSearchError as exc:
            errors[name] = f"{exc.code}: {exc.message}"
            continue
        finally:
            timings.append((time.perf_counter() - start) * 1000)
        if progress:
            progress(name)

    singles = [n for n in data.images if len(data.identities.get(n, [])) == 1]
    groups = [n for n in data.images if len(data.identities.get(n, [])) != 1]
    no_face = sorted((n for n in singles if n in analyzed and not analyzed[n].faces), key=_natural_key)
    vec: dict[str, np.ndarray] = {
        n: analyzed[n].faces[0].descriptor for n in singles if n in analyzed and analyzed[n].faces
    }
    ident = {n: data.identities[n][0] for n in singles}

    report: dict = {
        "dataset": str(data.root),
        "images": len(data.images),
        "errors": errors,
        "no_face": no_face,
        "match_distance": match_distance,
        "match_similarity": round(float(similarity_from_distance(match_distance)), 3),
    }

    # Pairs at the shipped threshold, and the best achievable on this set.
    usable = [(a, b, same) for a, b, same in data.pairs if a in vec and b in vec]
    if usable:
        d = np.array([float(np.linalg.norm(vec[a] - vec[b])) for a, b, _ in usable])
        same = np.array([s for _, _, s in usable])
        predicted = d <= match_distance
        best_acc, best_cut = best_threshold(d, same)
        bar = accuracy_interval(d, same, 0.996)
        report.update(
            pairs=len(data.pairs),
            pairs_scored=len(usable),
            pairs_accuracy=round(float((predicted == same).mean()), 5),
            pairs_false_accepts=int((predicted & ~same).sum()),
            pairs_false_rejects=int((~predicted & same).sum()),
            pairs_best_accuracy=round(best_acc, 5),
            pairs_best_distance=round(best_cut, 4),
            pairs_996_no_false_accept_range=[round(x, 4) for x in bar] if bar else None,
            same_distance_max=round(float(d[same].max()), 4) if same.any() else None,
            different_distance_min=round(float(d[~same].min()), 4) if (~same).any() else None,
        )

    names = sorted(vec, key=_natural_key)
    matrix = np.stack([vec[n] for n in names]) if names else np.zeros((0, 128), np.float32)
    dists = np.linalg.norm(matrix[:, None, :] - matrix[None, :, :], axis=2) if names else np.zeros((0, 0))
    labels = np.array([ident[n] for n in names])

    # Rank-1, leave one out.
    correct = 0
    misses = []
    for i, n in enumerate(names):
        row = dists[i].copy()
        row[i] = np.inf
        j = int(np.argmin(row)) if len(row) > 1 else i
        if j != i and labels[j] == labels[i]:
            correct += 1
        else:
            misses.append(n)
    report.update(rank1=correct, rank1_total=len(singles), rank1_misses=misses)

    # Open set: remove each identity from the gallery and search its images; any match is a false accept.
    false_accepts, trials, worst = 0, 0, []
    for person in sorted(set(labels)):
        probes = np.where(labels == person)[0]
        gallery = np.where(labels != person)[0]
        for p in probes:
            trials += 1
            nearest = float(dists[p, gallery].min())
            if nearest <= match_distance:
                false_accepts += 1
                worst.append({"probe": names[p], "distance": round(nearest, 4)})
    report.update(open_set_false_accepts=false_accepts, open_set_trials=trials, open_set_false_accept_list=worst)
    if trials:
        others = [float(dists[p, labels != labels[p]].min()) for p in range(len(names))]
        report["open_set_nearest_stranger_min"] = round(min(others), 4)

    # Group photos: gallery = first image of each identity.
    first: dict[str, int] = {}
    for i in range(len(names)):
        first.setdefault(labels[i], i)
    g_names = list(first)
    g_matrix = matrix[[first[p] for p in g_names]] if g_names else np.zeros((0, 128), np.float32)
    identified, labelled, group_report = 0, 0, {}
    for n in groups:
        if n not in analyzed:
            continue
        truth = set(data.identities.get(n, []))
        labelled += len(truth)
        found: list[dict] = []
        for face in analyzed[n].faces:
            if face.descriptor is None or not len(g_names):
                continue
            d = np.linalg.norm(g_matrix - face.descriptor, axis=1)
            k = int(np.argmin(d))
            if d[k] <= match_distance:
                found.append(
                    {
                        "identity": g_names[k],
                        "distance": round(float(d[k]), 4),
                        "similarity": round(float(similarity_from_distance(d[k])), 2),
                        "box": [round(v, 1) for v in face.box],
                    }
                )
        found_ids = {f["identity"] for f in found}
        identified += len(found_ids & truth) if truth else len(found)
        group_report[n] = {"faces": len(analyzed[n].faces), "labelled": sorted(truth), "matches": found}
    report.update(group_faces_identified=identified, group_faces_labelled=labelled, groups=group_report)
    report["ms_per_image_p50"] = round(statistics.median(timings), 1) if timings else None
    report["ms_per_image_p95"] = round(float(np.percentile(timings, 95)), 1) if timings else None
    return report
