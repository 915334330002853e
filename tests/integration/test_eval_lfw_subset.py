"""`facesearch eval` end to end on a small LFW subset (the full 11k-photo run is a benchmark: BENCHMARKS.md).

The subset keeps LFW's shape: people with several photos, people with one, and the View 2 pairs (with their
folds) among the photos kept, so the ten-fold protocol, all-pairs error rates and open-set identification run.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from facesearch.evaluation import evaluate

pytestmark = pytest.mark.slow

MULTI_PEOPLE = 30  # people with 2+ photos (up to 4 each)
SINGLE_PEOPLE = 40


@pytest.fixture(scope="module")
def lfw_subset(tmp_path_factory) -> Path:
    lfw = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "lfw"
    if not (lfw / "identities.csv").is_file():
        pytest.fail(f"shared dataset missing: {lfw}")
    photos: dict[str, list[str]] = defaultdict(list)
    with (lfw / "identities.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            photos[row["identity"]].append(row["image"])
    with (lfw / "pairs.csv").open(newline="") as f:
        pairs = list(csv.DictReader(f))
    # People from the View 2 same-person pairs first, so pairs survive the cut; then singletons.
    multi: list[str] = []
    for p in pairs:
        person = p["image_a"].rsplit("_", 1)[0]
        if p["same_person"] == "1" and person not in multi and len(photos[person]) >= 2:
            multi.append(person)
        if len(multi) == MULTI_PEOPLE:
            break
    singles = [p for p in sorted(photos) if len(photos[p]) == 1][:SINGLE_PEOPLE]
    keep = {img for p in multi for img in sorted(photos[p])[:4]} | {photos[p][0] for p in singles}
    root = tmp_path_factory.mktemp("lfw-subset")
    (root / "images").mkdir()
    for img in keep:
        shutil.copy(lfw / "images" / img, root / "images" / img)
    with (root / "identities.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "identity"])
        w.writerows((img, img.rsplit("_", 1)[0]) for img in sorted(keep))
    kept_pairs = [p for p in pairs if p["image_a"] in keep and p["image_b"] in keep]
    # Different-person pairs of View 2 rarely survive a subset: add one per fold from the photos kept.
    extra = sorted(keep)
    for fold in range(10):
        a, b = extra[fold], extra[-1 - fold]
        kept_pairs.append({"image_a": a, "image_b": b, "same_person": "0", "fold": str(fold)})
    with (root / "pairs.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image_a", "image_b", "same_person", "fold"])
        w.writeheader()
        w.writerows(kept_pairs)
    return root


@pytest.fixture(scope="module")
def eval_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("FACESEARCH_EVAL_CACHE", str(tmp_path_factory.mktemp("eval-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def cold(lfw_subset, engine, eval_cache, tmp_path_factory) -> dict:
    return evaluate(lfw_subset, engine, plots_dir=tmp_path_factory.mktemp("plots"))


def test_every_pair_of_labelled_faces_is_scored(cold):
    n = cold["labelled_faces"]
    assert cold["identities"] == MULTI_PEOPLE + SINGLE_PEOPLE
    assert cold["impostor_pairs"] + cold["genuine_pairs"] == n * (n - 1) // 2
    assert cold["genuine_pairs"] > 0 and cold["no_face"] == [] and cold["errors"] == {}


def test_ten_fold_protocol_is_reported(cold):
    assert len(cold["tenfold_accuracies"]) == 10
    assert 0.9 <= cold["tenfold_accuracy_mean"] <= 1.0
    assert cold["tenfold_accuracy_std"] >= 0.0


def test_error_rates_carry_their_counts_at_each_reported_similarity(cold):
    rows = cold["error_rates"]
    assert [r["similarity"] for r in rows] == [50.0, 80.0, 90.0, 95.0, 99.0, 99.9]
    for r in rows:
        assert {"similarity", "distance", "fmr", "fnmr", "impostor_pairs", "genuine_pairs"} <= set(r)
        assert r["fmr"] == r["false_matches"] / r["impostor_pairs"]
    fmrs = [r["fmr"] for r in rows]
    assert fmrs == sorted(fmrs, reverse=True)  # stricter similarity, fewer false matches
    assert [r["target_fmr"] for r in cold["error_rates_at_fmr"]] == [1e-3, 1e-4, 1e-5, 1e-6]


def test_open_set_identification_covers_growing_galleries_next_to_the_model(cold):
    ident = cold["identification"]
    sizes = sorted({r["gallery_size"] for r in ident["rows"]})
    assert sizes[-1] == ident["gallery_people"] and ident["stranger_searches"] == SINGLE_PEOPLE // 2
    for r in ident["rows"]:
        assert 0.0 <= r["fpir"] <= 1.0 and 0.0 <= r["predicted_fpir"] <= 1.0
    assert {r["gallery_size"] for r in ident["extrapolation"]} == {300_000, 20_000_000}


def test_rank1_counts_only_people_with_another_photo(cold):
    assert cold["rank1_total"] == cold["labelled_faces"] - SINGLE_PEOPLE
    assert cold["rank1"] >= 0.9 * cold["rank1_total"]


def test_plots_are_written(cold):
    assert [Path(p).name for p in cold["plots"]] == ["det.png", "fpir_gallery_size.png"]
    assert all(Path(p).stat().st_size > 5000 for p in cold["plots"])


def test_a_second_run_reuses_the_cached_descriptors_without_the_engine(cold, lfw_subset, eval_cache):
    class NoEngine:
        def analyze(self, *_a, **_k):
            raise AssertionError("the cache should have answered")

    warm = evaluate(lfw_subset, NoEngine())
    assert warm["descriptors_from_cache"] and not cold["descriptors_from_cache"]
    assert warm["error_rates"] == cold["error_rates"] and warm["tenfold_accuracies"] == cold["tenfold_accuracies"]


def test_cli_json_has_the_documented_keys(cold, lfw_subset, eval_cache, capsys):
    from facesearch.cli import main

    plots = lfw_subset.parent / "cli-plots"
    assert main(["eval", str(lfw_subset), "--json", "--plots", str(plots)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"tenfold_accuracy_mean", "tenfold_accuracy_std", "error_rates"} <= set(report)
    assert (plots / "det.png").is_file() and report["descriptors_from_cache"]
