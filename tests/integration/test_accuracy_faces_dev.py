"""Accuracy on faces-dev at the shipped default threshold: the acceptance bar of the engine."""

from __future__ import annotations

import pytest

from facesearch.engine.similarity import DEFAULT_MATCH_DISTANCE
from facesearch.evaluation import evaluate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(engine, faces_dev) -> dict:
    return evaluate(faces_dev, engine)


def test_every_photo_decodes_and_yields_a_face(report):
    assert report["errors"] == {} and report["no_face"] == [] and report["images"] == 64


def test_pairs_at_the_default_threshold_accept_no_stranger_and_reject_few_true_pairs(report):
    """The default (similarity 90, FMR 10⁻³ on LFW) is stricter than faces-dev's own best cut: today 0 false
    accepts and 4 false rejects of 140 (99.23 %); the old faces-dev-calibrated 0.566 reached 99.81 %."""
    assert report["pairs_scored"] == 520
    assert report["pairs_false_accepts"] == 0
    assert report["pairs_false_rejects"] <= 4
    assert report["pairs_accuracy"] >= 0.99


def test_default_threshold_accepts_no_different_person_pair_of_faces_dev(report):
    """If the engine changes (detector, alignment, model), refit the scale on LFW (engine/similarity.py)."""
    _, first_different = report["pairs_996_no_false_accept_range"]
    assert first_different > DEFAULT_MATCH_DISTANCE


def test_rank1_leave_one_out_is_perfect(report):
    assert (report["rank1"], report["rank1_total"]) == (61, 61)


def test_open_set_false_accepts_are_reported_and_do_not_grow(report):
    """Goal 0; today 3 (look-alike actors person07/person08 at distance 0.514, and img29 at 0.542)."""
    assert report["open_set_trials"] == 61
    assert report["open_set_false_accepts"] <= 3
    assert len(report["open_set_false_accept_list"]) == report["open_set_false_accepts"]


def test_person01_is_recognised_in_both_group_photos(report):
    for name in ("couple.jpg", "selfie-many-people.jpg"):
        assert "person01" in {m["identity"] for m in report["groups"][name]["matches"]}
