"""False-match risk at a collection's size, against examples computed by hand from FMR(S) = ((100 − S)/100)³."""

from __future__ import annotations

import pytest

from facesearch.collections import risk


def test_fmr_per_comparison_follows_the_scale():
    assert risk.risk_at(90, 1)["FalseMatchRatePerComparison"] == pytest.approx(1e-3)
    assert risk.risk_at(99, 1)["FalseMatchRatePerComparison"] == pytest.approx(1e-6)


def test_a_300k_gallery_at_90_expects_300_false_candidates_per_stranger_search():
    r = risk.risk_at(90, 300_000)
    assert r == {
        "Threshold": 90.0,
        "FalseMatchRatePerComparison": pytest.approx(1e-3),
        "ExpectedFalseCandidatesPerSearch": pytest.approx(300.0),
        "ProbabilityOfAnyFalseCandidate": pytest.approx(1.0),
    }


def test_probability_of_any_is_one_minus_the_chance_that_every_comparison_misses():
    # 1,000 faces at 95: FMR 1.25e-4, 1 − (1 − 1.25e-4)^1000 = 0.117503...
    assert risk.probability_of_any_false_candidate(95, 1000) == pytest.approx(1 - (1 - 1.25e-4) ** 1000)
    assert risk.probability_of_any_false_candidate(95, 1000) == pytest.approx(0.1175, abs=1e-4)
    # Tiny FMR, huge N: no precision lost (20M faces at 99.9: 1 − exp(−0.02) ≈ 0.0198).
    assert risk.probability_of_any_false_candidate(99.9, 20_000_000) == pytest.approx(0.019801, abs=1e-6)
    assert risk.probability_of_any_false_candidate(95, 0) == 0.0
    assert risk.probability_of_any_false_candidate(0, 5) == 1.0


@pytest.mark.parametrize(
    ("faces", "expected"),
    [
        # FMR allowed = 0.1 / (2 · N); threshold = 100·(1 − FMR^⅓), rounded up to 0.01.
        (100, 92.07),  # FMR 5e-4 → 92.063
        (1_000, 96.32),  # 5e-5 → 96.316
        (300_000, 99.45),  # 1.667e-7 → 99.449
        (20_000_000, 99.87),  # 2.5e-9 → 99.864
    ],
)
def test_budgeted_default_is_the_lowest_threshold_within_the_budget(faces, expected):
    t = risk.budgeted_threshold(faces, budget=0.1, floor=0.0)
    assert t == expected
    assert risk.expected_false_candidates(t, faces) * risk.SAFETY_FACTOR <= 0.1
    assert risk.expected_false_candidates(t - 0.01, faces) * risk.SAFETY_FACTOR > 0.1  # one step lower exceeds


def test_budgeted_default_never_goes_below_the_floor_and_grows_with_the_collection():
    assert risk.budgeted_threshold(10, floor=90.0) == 90.0  # a small collection keeps its floor
    assert risk.budgeted_threshold(0, floor=90.0) == 90.0
    sizes = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10**8]
    defaults = [risk.budgeted_threshold(n, floor=0.0) for n in sizes]
    assert defaults == sorted(defaults) and defaults[-1] < 100.0


def test_a_bigger_budget_or_no_safety_margin_allows_a_lower_threshold():
    strict = risk.budgeted_threshold(1000, budget=0.1, floor=0.0)
    assert risk.budgeted_threshold(1000, budget=1.0, floor=0.0) < strict
    assert risk.budgeted_threshold(1000, budget=0.1, floor=0.0, safety=1.0) == 95.36  # FMR 1e-4 → 95.358


def test_exceeds_budget_names_thresholds_too_loose_for_the_collection():
    assert risk.exceeds_budget(90, 300_000, 0.1)  # 300 expected
    assert not risk.exceeds_budget(99.6, 300_000, 0.1)  # 6.4e-8 · 3e5 = 0.019
    assert not risk.exceeds_budget(90, 100, 0.1)  # exactly 0.1 is within


@pytest.mark.parametrize("bad", [{"budget": 0.0}, {"safety": 0.5}])
def test_invalid_budget_or_safety_is_refused(bad):
    with pytest.raises(ValueError):
        risk.budgeted_threshold(10, floor=0.0, **bad)
