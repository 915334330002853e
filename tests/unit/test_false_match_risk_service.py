"""False-match risk in the service: DescribeCollection's FalseMatchRisk, the budgeted default threshold of a
search, refusal of a threshold over budget in identification collections. No models: faces are stored directly
with synthetic descriptors and searched by FaceId. Expected numbers are computed by hand from the scale,
FMR(S) = ((100 − S)/100)³."""

from __future__ import annotations

import dataclasses
import json
import uuid

import numpy as np
import pytest
from face_records import face_records

from facesearch.audit import MemoryAuditSink
from facesearch.errors import InvalidParameterException
from facesearch.settings import load_settings
from facesearch.wiring import build_service


def _uuid(i: int) -> str:
    return str(uuid.UUID(int=i + 1, version=4))


def _service(tmp_path, faces: int, **settings):
    svc = build_service(load_settings(backend="embedded", home=tmp_path, **settings), audit=MemoryAuditSink())
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(faces, 128)).astype(np.float32)  # far apart: no face matches another
    records = [dataclasses.replace(r, face_id=_uuid(i)) for i, r in enumerate(face_records(vectors))]
    return svc, records


@pytest.fixture
def thousand(tmp_path):
    svc, records = _service(tmp_path, 1000)
    svc.create_collection(CollectionId="c")
    svc.store.add_faces("c", records)
    yield svc
    svc.store.close()


def test_describe_reports_the_risk_at_the_floor_and_at_the_default(thousand):
    out = thousand.describe_collection(CollectionId="c")
    assert out["FaceCount"] == 1000 and out["FaceMatchThresholdFloor"] == 90.0
    # Default: FMR ≤ 0.1 / (2 · 1000) = 5e-5 → 100·(1 − 5e-5^⅓) = 96.316 → 96.32.
    assert out["DefaultFaceMatchThreshold"] == 96.32 and out["FalseCandidateBudget"] == 0.1
    floor, default = out["FalseMatchRisk"]
    assert floor == {
        "Threshold": 90.0,
        "FalseMatchRatePerComparison": pytest.approx(1e-3),
        "ExpectedFalseCandidatesPerSearch": pytest.approx(1.0),
        "ProbabilityOfAnyFalseCandidate": pytest.approx(0.6323, abs=1e-4),  # 1 − 0.999^1000
    }
    assert default["Threshold"] == 96.32
    assert default["FalseMatchRatePerComparison"] == pytest.approx(0.0368**3)
    assert default["ExpectedFalseCandidatesPerSearch"] == pytest.approx(1000 * 0.0368**3)  # 0.0498
    assert default["ProbabilityOfAnyFalseCandidate"] == pytest.approx(1 - (1 - 0.0368**3) ** 1000)
    assert out["RefusesThresholdsOverBudget"] is False


def test_a_search_without_threshold_applies_the_budgeted_default_and_says_so(thousand):
    out = thousand.search_faces(CollectionId="c", FaceId=_uuid(0))
    assert out["FaceMatchThreshold"] == 96.32
    assert thousand.audit.records[-1].threshold == 96.32


def test_an_explicit_threshold_at_or_above_the_floor_is_applied_as_given(thousand):
    out = thousand.search_faces(CollectionId="c", FaceId=_uuid(0), FaceMatchThreshold=90)
    assert out["FaceMatchThreshold"] == 90.0  # 1.0 expected false candidate, but not an identification collection
    with pytest.raises(InvalidParameterException, match="below collection c's floor of 90"):
        thousand.search_faces(CollectionId="c", FaceId=_uuid(0), FaceMatchThreshold=85)


def test_a_small_collection_keeps_its_floor_as_default(tmp_path):
    svc, records = _service(tmp_path, 10)
    svc.create_collection(CollectionId="c")
    svc.store.add_faces("c", records)
    assert svc.describe_collection(CollectionId="c")["DefaultFaceMatchThreshold"] == 90.0  # budget alone: 82.91
    assert len(svc.describe_collection(CollectionId="c")["FalseMatchRisk"]) == 1
    svc.store.close()


def test_identification_collections_refuse_a_threshold_over_budget_naming_the_numbers(tmp_path):
    svc, records = _service(tmp_path, 200, false_candidate_budget=1e-4)
    svc.create_collection(CollectionId="ident", FaceMatchThresholdFloor=99)
    svc.store.add_faces("ident", records)
    described = svc.describe_collection(CollectionId="ident")
    # Default: FMR ≤ 1e-4 / (2 · 200) = 2.5e-7 → 100·(1 − 2.5e-7^⅓) = 99.370 → 99.38 (rounded up to 0.01).
    assert described["RefusesThresholdsOverBudget"] is True and described["DefaultFaceMatchThreshold"] == 99.38
    # 99 → 200 · 1e-6 = 2e-4 expected false candidates, over the limit of 1e-4.
    with pytest.raises(InvalidParameterException) as err:
        svc.search_faces(CollectionId="ident", FaceId=_uuid(0), FaceMatchThreshold=99)
    msg = str(err.value)
    assert "0.0002 false candidates" in msg and "200 faces" in msg and "limit of 0.0001" in msg and "99.38" in msg
    assert (
        svc.search_faces(CollectionId="ident", FaceId=_uuid(0), FaceMatchThreshold=99.5)["FaceMatchThreshold"] == 99.5
    )
    assert svc.search_faces(CollectionId="ident", FaceId=_uuid(0))["FaceMatchThreshold"] == 99.38
    svc.store.close()


def test_the_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("FACESEARCH_FALSE_CANDIDATE_BUDGET", "0.5")
    assert load_settings().false_candidate_budget == 0.5
    monkeypatch.setenv("FACESEARCH_FALSE_CANDIDATE_BUDGET", "0")
    with pytest.raises(ValueError, match="FACESEARCH_FALSE_CANDIDATE_BUDGET"):
        load_settings()


def test_collection_report_names_near_duplicates_under_different_names_and_the_searches(tmp_path, capsys):
    """`facesearch collection report C`: one person stored as "alice" and as "alicia" is flagged; two photos of
    "bob" under the same name, and a face without a name, are not."""
    from facesearch.cli import main

    svc = build_service(load_settings(backend="embedded", home=tmp_path))  # JSONL audit, as the CLI reads it
    svc.create_collection(CollectionId="c")
    rng = np.random.default_rng(1)
    base = rng.normal(size=(3, 128)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    close = 0.01 * rng.normal(size=128).astype(np.float32)
    vectors = [base[0], base[0] + close, base[1], base[1] + close, base[2], base[2] + close]
    names = ["alice", "alicia", "bob", "bob", "carol", None]
    records = [
        dataclasses.replace(r, face_id=_uuid(i), external_image_id=n)
        for i, (r, n) in enumerate(zip(face_records(vectors), names, strict=True))
    ]
    svc.store.add_faces("c", records)
    svc.search_faces(CollectionId="c", FaceId=_uuid(0))
    svc.search_faces(CollectionId="c", FaceId=_uuid(2), FaceMatchThreshold=95)
    svc.store.close()

    assert main(["collection", "report", "c", "--data-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["FaceCount"] == 6 and report["DefaultFaceMatchThreshold"] == 90.0
    dups = report["NearDuplicatesUnderDifferentNames"]
    assert [sorted(f["ExternalImageId"] for f in d["Faces"]) for d in dups] == [["alice", "alicia"]]
    stats = report["SearchStatistics"]
    assert stats["Searches"] == 2 and stats["Thresholds"] == {"Min": 90.0, "Median": 92.5, "Max": 95.0}
    assert stats["SearchesWithAnyMatch"] == 2 and stats["MatchesPerSearch"] == 1.0  # alicia; bob's other photo

    assert main(["collection", "report", "c", "--data-dir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "alice ↔ alicia" in text and "1 pair(s)" in text and "searches (audit)  2" in text


def test_a_collection_stored_with_the_old_floor_80_is_held_to_the_service_floor(tmp_path):
    """Before the LFW refit, 80 meant distance 0.566; today it means 0.607. Such a collection is searched at ≥ 90."""
    from facesearch.engine.types import FACE_MODEL_VERSION
    from facesearch.store.records import CollectionRecord

    svc, records = _service(tmp_path, 3)
    svc.store.create_collection(CollectionRecord("old", records[0].indexed_at, FACE_MODEL_VERSION, 80.0, True))
    svc.store.add_faces("old", records)
    assert svc.describe_collection(CollectionId="old")["FaceMatchThresholdFloor"] == 90.0
    with pytest.raises(InvalidParameterException, match="floor of 90"):
        svc.search_faces(CollectionId="old", FaceId=_uuid(0), FaceMatchThreshold=80)
    svc.store.close()


class TestPerCollectionBudget:
    """A collection may carry its own budget (CreateCollection/UpdateCollection ``FalseCandidateBudget``): a
    watchlist reviewed by one person may want 0.01 while a photo archive tolerates 1; the default threshold follows."""

    def test_a_stricter_budget_gives_a_stricter_default_and_is_reported(self, tmp_path):
        svc, records = _service(tmp_path, 1000)
        svc.create_collection(CollectionId="strict", FalseCandidateBudget=0.01)
        svc.create_collection(CollectionId="lax", FalseCandidateBudget=1.0)
        for cid in ("strict", "lax"):
            svc.store.add_faces(cid, records)
        strict, lax = (svc.describe_collection(CollectionId=c) for c in ("strict", "lax"))
        assert strict["FalseCandidateBudget"] == 0.01 and lax["FalseCandidateBudget"] == 1.0
        # FMR ≤ budget / (2 · 1000): 5e-6 → 98.29; 5e-4 → 92.06 (S = 100·(1 − FMR^⅓), rounded up)
        assert strict["DefaultFaceMatchThreshold"] == pytest.approx(98.29, abs=0.01)
        assert lax["DefaultFaceMatchThreshold"] == pytest.approx(92.06, abs=0.01)
        assert svc.search_faces(CollectionId="strict", FaceId=_uuid(0))["FaceMatchThreshold"] == pytest.approx(
            98.29, abs=0.01
        )
        svc.store.close()

    def test_the_budget_is_stored_changed_only_through_the_audited_update_and_survives_a_reopen(self, tmp_path):
        svc, _ = _service(tmp_path, 0)
        svc.create_collection(CollectionId="c", FalseCandidateBudget=0.5)
        out = svc.update_collection(CollectionId="c", FalseCandidateBudget=0.05)
        assert out["FalseCandidateBudget"] == 0.05
        [outcome] = [r for r in svc.audit.records if r.operation == "UpdateCollection" and r.phase == "outcome"]
        assert outcome.details["false_candidate_budget"] == {"old": 0.5, "new": 0.05}
        svc.store.close()
        again = build_service(load_settings(backend="embedded", home=tmp_path), audit=MemoryAuditSink())
        with again.store:
            assert again.describe_collection(CollectionId="c")["FalseCandidateBudget"] == 0.05

    @pytest.mark.parametrize("bad", [0, -1, "0.1", True, 5000])
    def test_a_budget_that_is_not_a_positive_number_is_refused(self, tmp_path, bad):
        svc, _ = _service(tmp_path, 0)
        with pytest.raises(InvalidParameterException, match="FalseCandidateBudget"):
            svc.create_collection(CollectionId="c", FalseCandidateBudget=bad)
        svc.store.close()

    def test_a_collection_without_its_own_budget_follows_the_service(self, tmp_path):
        svc, _ = _service(tmp_path, 0, false_candidate_budget=0.3)
        svc.create_collection(CollectionId="c")
        assert svc.describe_collection(CollectionId="c")["FalseCandidateBudget"] == 0.3
        svc.store.close()
