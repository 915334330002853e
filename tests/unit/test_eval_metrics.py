"""The error-rate arithmetic of `facesearch eval`, checked against brute force on synthetic descriptors (no models)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from facesearch.evaluation import metrics
from facesearch.evaluation.report import gallery_sizes, split_open_set


def synthetic(people: int = 40, per_person: int = 4, spread: float = 0.25, seed: int = 1):
    """Descriptors of norm ≈ 1 clustered by person, like dlib's: same-person pairs closer than strangers."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, 128))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(people), per_person)
    x = centres[labels] + rng.normal(scale=spread / np.sqrt(128), size=(labels.size, 128))
    return x.astype(np.float32), labels


def brute_force(x, labels):
    genuine, impostor = [], []
    for i, j in itertools.combinations(range(len(x)), 2):
        d = float(np.linalg.norm(x[i].astype(np.float64) - x[j]))
        (genuine if labels[i] == labels[j] else impostor).append(d)
    return np.sort(genuine), np.sort(impostor)


@pytest.fixture(scope="module")
def data():
    x, labels = synthetic()
    genuine, impostor = brute_force(x, labels)
    return x, labels, genuine, impostor


@pytest.mark.parametrize("block", [7, 64, 10_000])
def test_all_pairs_are_counted_once_whatever_the_block_size(data, block):
    x, labels, genuine, impostor = data
    s = metrics.score_all_pairs(x, labels, keep_below=1.2, block=block)
    assert s.genuine_pairs == genuine.size == 40 * 6
    assert s.impostor_pairs == impostor.size == 160 * 159 // 2 - 240
    np.testing.assert_allclose(s.genuine, genuine, atol=1e-4)
    np.testing.assert_allclose(s.impostor_close, impostor[impostor <= 1.2], atol=1e-4)


def test_false_matches_equal_brute_force_below_and_above_the_exact_range(data):
    x, labels, _, impostor = data
    s = metrics.score_all_pairs(x, labels, keep_below=1.3)
    for t in (1.25, 1.3, 1.35, 1.4, 1.5):  # 1.35.. are counted from the histogram, on its bin edges
        assert s.false_matches(t) == pytest.approx(int((impostor <= t).sum()), abs=1)
    assert s.fmr(10.0) == 1.0 and s.fmr(0.0) == 0.0


def test_distance_at_fmr_is_the_loosest_cut_that_keeps_the_rate(data):
    x, labels, _, impostor = data
    s = metrics.score_all_pairs(x, labels, keep_below=1.5)
    for target in (1e-3, 1e-2, 0.05):
        cut = s.distance_at_fmr(target)
        allowed = int(target * impostor.size)
        assert s.false_matches(cut) == allowed  # exactly the allowance, not one more
        assert s.fmr(cut) <= target
        assert impostor[allowed] > cut  # the next impostor would exceed it


def test_fnmr_counts_genuine_pairs_above_the_cut():
    s = metrics.PairScores(np.array([0.1, 0.2, 0.3, 0.4]), np.zeros(10, np.int64), np.zeros(0), np.zeros((0, 2)), 0)
    assert s.false_non_matches(0.25) == 2 and s.fnmr(0.25) == 0.5 and s.fnmr(0.4) == 0.0


def test_error_rate_row_carries_the_counts_behind_each_rate(data):
    x, labels, genuine, impostor = data
    s = metrics.score_all_pairs(x, labels, keep_below=1.5)
    row = metrics.error_rate_row(s, 1.3, 42.0)
    assert row["impostor_pairs"] == impostor.size and row["genuine_pairs"] == genuine.size
    assert row["false_matches"] == int((impostor <= 1.3).sum())
    assert row["fmr"] == row["false_matches"] / row["impostor_pairs"]
    assert row["fnmr"] == row["false_non_matches"] / row["genuine_pairs"]


def test_ten_fold_picks_the_cut_on_nine_folds_and_tests_on_the_tenth():
    # Separable except fold 0, where one impostor sits at 0.3 among genuine pairs at 0.2 and 0.4.
    folds = np.repeat(np.arange(10), 4)
    d = np.tile([0.2, 0.4, 0.8, 0.9], 10).astype(float)
    same = np.tile([True, True, False, False], 10)
    d[2] = 0.3
    r = metrics.ten_fold(d, same, folds)
    # Every training set puts the cut between 0.4 and 0.8 (midpoint 0.6): fold 0 errs once (0.3 ≤ 0.6).
    assert r["tenfold_distances"] == [0.6] * 10
    assert r["tenfold_accuracies"] == [0.75] + [1.0] * 9
    assert r["tenfold_accuracy_mean"] == pytest.approx(0.975)
    assert r["tenfold_accuracy_std"] == pytest.approx(np.std([0.75] + [1.0] * 9, ddof=1))


def test_tar_at_far_counts_true_pairs_below_the_allowed_impostors():
    d = np.array([0.1, 0.2, 0.3, 0.65, 0.25, 0.6, 0.7, 0.8])
    same = np.array([True, True, True, True, False, False, False, False])
    assert metrics.tar_at_far(d, same, 0.0) == 0.5  # cut below the first impostor (0.25)
    assert metrics.tar_at_far(d, same, 0.25) == 0.75  # one impostor allowed: cut below 0.6


def test_rank1_counts_only_probes_whose_person_has_another_photo():
    x = np.array([[0, 0], [0.1, 0], [5, 5], [5.1, 5], [9, 9]], np.float32)
    labels = np.array([0, 0, 1, 2, 3])  # person 1 and 2 look alike; person 3 is a singleton
    correct, total, missed = metrics.rank1_leave_one_out(x, labels, block=2)
    assert (correct, total, missed.tolist()) == (2, 2, [])
    labels = np.array([0, 0, 1, 1, 3])
    assert metrics.rank1_leave_one_out(x, labels)[:2] == (4, 4)


def test_open_set_counts_strangers_and_mates_per_nested_gallery():
    # Gallery of 3 people on a line; a stranger near gallery 0 and 2; a mated probe of gallery person 1.
    x = np.array([[0.0], [1.0], [2.0], [0.05], [1.9], [1.2]], np.float32)
    os_ = metrics.open_set(x, np.array([0, 1, 2]), np.array([5]), np.array([1]), np.array([3, 4]))
    one = os_.at(1, 0.15)  # gallery = person 0: stranger 3 matches it; the mated probe's person is absent
    assert one["fpir"] == 0.5 and one["false_candidates_per_search"] == 0.5 and one["mated_searches"] == 0
    three = os_.at(3, 0.15)
    assert three["fpir"] == 1.0 and three["false_candidates_per_search"] == 1.0
    assert three["fnir"] == 1.0  # mate at 0.2 > 0.15
    loose = os_.at(3, 0.25)
    assert loose["fnir"] == 0.0 and loose["tpir_rank1"] == 1.0  # nearest non-mate at 0.8
    wide = os_.at(3, 1.1)
    assert wide["false_candidates_per_search"] == 2.0  # stranger 3: 0.05, 0.95 (not 1.95); stranger 4: 0.9, 0.1


def test_independent_comparisons_model():
    assert metrics.predicted_any(1e-3, 1000) == pytest.approx(1 - (1 - 1e-3) ** 1000)
    assert metrics.predicted_any(1e-3, 1000) == pytest.approx(0.6323, abs=1e-4)
    assert metrics.predicted_any(0.0, 10**9) == 0.0
    assert metrics.predicted_any(1e-9, 20_000_000) == pytest.approx(0.0198, abs=1e-4)


def test_open_set_split_keeps_strangers_out_of_every_gallery():
    labels = np.array([0, 0, 0, 1, 2, 3, 4, 5, 5, 6, 7, 8])  # singletons: 1 2 3 4 6 7 8
    split = split_open_set(labels, max_strangers=10)
    stranger_people = set(labels[split["strangers"]].tolist())
    gallery_people = labels[split["gallery"]].tolist()
    assert len(stranger_people) == 3  # half the 7 singletons
    assert not stranger_people & set(gallery_people) and len(set(gallery_people)) == len(gallery_people)
    assert {0, 5} <= set(gallery_people)
    for probe, pos in zip(split["mated"], split["mated_pos"], strict=True):
        assert labels[split["gallery"][pos]] == labels[probe] and split["gallery"][pos] != probe
    assert sorted(split["mated"].tolist()) == [1, 2, 8]


def test_gallery_sizes_grow_to_all():
    assert gallery_sizes(3705) == [100, 300, 1000, 3000, 3705]
    assert gallery_sizes(50) == [50]


def test_fitted_curve_passes_through_the_measured_fmr_levels(data):
    from facesearch.evaluation.calibration import fit_fmr_curve

    x, labels, _, impostor = data
    s = metrics.score_all_pairs(x, labels, keep_below=2.0)
    fit = fit_fmr_curve(s, min_pairs=5)
    knots = fit["knots"]
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in itertools.pairwise(knots))
    assert knots[-1][1] == 0.0 and knots[-1][0] == pytest.approx(impostor.max(), abs=1e-3)
    for d, level in knots[:-1]:
        assert np.log10(max((impostor <= d + 1e-4).mean(), 1e-12)) == pytest.approx(level, abs=0.1)
    assert fit["tail_slope_decades_per_distance"] > 0


class _Face:
    def __init__(self, box, vec):
        self.box, self.confidence, self.descriptor = box, 0.99, np.asarray(vec, np.float32)


class _FakeEngine:
    """Two faces per image: a small one at the centre, a big one off-centre; counts its calls."""

    calls = 0

    def analyze(self, data: bytes):
        from types import SimpleNamespace

        _FakeEngine.calls += 1
        k = float(data[0])
        return SimpleNamespace(
            width=100,
            height=100,
            faces=[_Face((0, 0, 60, 60), np.full(128, k)), _Face((40, 40, 70, 70), np.full(128, -k))],
        )


def test_descriptors_are_cached_per_dataset_and_reused_without_the_engine(tmp_path, monkeypatch):
    from facesearch.evaluation.descriptors import describe
    from facesearch.evaluation.report import labelled_face

    monkeypatch.setenv("FACESEARCH_EVAL_CACHE", str(tmp_path / "cache"))
    (tmp_path / "ds" / "images").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "ds" / "images" / f"p_{i}.jpg").write_bytes(bytes([i + 1]))
    images = ["p_0.jpg", "p_1.jpg", "p_2.jpg"]
    _FakeEngine.calls = 0
    first = describe(tmp_path / "ds", images, _FakeEngine, progress=False)
    assert _FakeEngine.calls == 3 and not first.from_cache and len(first.descriptors) == 6

    def no_engine():
        raise AssertionError("cache miss")

    again = describe(tmp_path / "ds", images, no_engine, progress=False)
    assert again.from_cache
    np.testing.assert_array_equal(again.descriptors, first.descriptors)
    np.testing.assert_array_equal(again.faces_of(1), [2, 3])
    # The face nearest the centre among those at least half as wide as the widest (30 ≥ 60/2): the second.
    assert labelled_face(again, 1) == 3
    # A different image list is a different dataset: described again.
    describe(tmp_path / "ds", images[:2], _FakeEngine, progress=False)
    assert _FakeEngine.calls == 5
