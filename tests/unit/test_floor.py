"""The threshold floor cannot be lowered without trace: a service minimum from settings (90 unless explicitly
and audibly lowered), enforced by every search on top of the collection's floor, changed per collection only
through the audited UpdateCollection. No models: faces are put in the store directly, searched by FaceId."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from facesearch.audit import MemoryAuditSink
from facesearch.cli import main
from facesearch.collections.service import FaceCollectionService
from facesearch.engine.similarity import DEFAULT_THRESHOLD
from facesearch.errors import AuditWriteError, InvalidParameterException
from facesearch.settings import SettingsError, load_settings
from facesearch.store.embedded import EmbeddedStore
from facesearch.store.records import CollectionRecord, FaceRecord
from facesearch.wiring import build_service

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def face(vector: np.ndarray, name: str) -> FaceRecord:
    return FaceRecord(
        face_id=str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        image_id=str(uuid.uuid5(uuid.NAMESPACE_URL, "img-" + name)),
        vector=vector.astype(np.float32),
        bounding_box={"Width": 1.0, "Height": 1.0, "Left": 0.0, "Top": 0.0},
        confidence=99.0,
        indexed_at=T0,
        external_image_id=name,
    )


@pytest.fixture
def store(tmp_path: Path):
    s = EmbeddedStore(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def audit() -> MemoryAuditSink:
    return MemoryAuditSink()


@pytest.fixture
def strangers(store: EmbeddedStore, audit: MemoryAuditSink):
    """A collection of one probe face and three strangers, each ~1.0 apart (similarity far below 80)."""
    service = build_service(load_settings(), engine=object(), store=store, audit=audit)
    service.create_collection(CollectionId="c")
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(4, 128))
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True) * 0.75  # pairwise distance ~1.06
    faces = [face(v, f"person{i}") for i, v in enumerate(vectors)]
    store.add_faces("c", faces)
    return service, faces[0].face_id


class TestServiceMinimum:
    def test_settings_refuse_a_minimum_below_the_default_without_the_explicit_setting(self):
        with pytest.raises(SettingsError, match="FACESEARCH_ALLOW_LOW_FLOOR"):
            load_settings(min_floor=0)

    def test_a_service_cannot_be_built_with_floor_zero(self, store, audit):
        with pytest.raises(InvalidParameterException, match="allow_low_floor"):
            FaceCollectionService(object(), store, audit, min_floor=0)  # type: ignore[arg-type]
        assert audit.records == []

    def test_an_explicitly_lowered_minimum_is_audited_at_start_up(self, store, audit):
        settings = load_settings(min_floor=60, allow_low_floor=True)
        service = build_service(settings, engine=object(), store=store, audit=audit)
        assert service.min_floor == 60
        [record] = audit.records
        assert record.operation == "ConfigureServiceFloor" and record.threshold == 60
        assert record.details["safe_min_floor"] == DEFAULT_THRESHOLD

    def test_a_lowered_minimum_that_cannot_be_recorded_does_not_start(self, store):
        class Broken:
            def write(self, record):
                raise OSError("disk full")

        with pytest.raises(AuditWriteError):
            build_service(
                load_settings(min_floor=60, allow_low_floor=True), engine=object(), store=store, audit=Broken()
            )

    def test_the_default_minimum_writes_no_start_up_record(self, store, audit):
        build_service(load_settings(), engine=object(), store=store, audit=audit)
        assert audit.records == []


class TestSearchesEnforceTheFloor:
    def test_threshold_zero_is_refused_and_returns_no_stranger(self, strangers):
        service, probe = strangers
        with pytest.raises(InvalidParameterException, match="floor of 90"):
            service.search_faces(CollectionId="c", FaceId=probe, FaceMatchThreshold=0)
        assert service.search_faces(CollectionId="c", FaceId=probe)["FaceMatches"] == []

    def test_a_collection_created_with_floor_zero_is_refused(self, strangers):
        service, _ = strangers
        with pytest.raises(InvalidParameterException, match="service floor 90"):
            service.create_collection(CollectionId="low", FaceMatchThresholdFloor=0)

    def test_a_collection_record_edited_in_the_store_cannot_lower_the_floor(self, strangers, store):
        """Someone with write access to the store sets the floor to 0: searches still enforce the minimum."""
        service, probe = strangers
        old = store.get_collection("c")
        store.update_collection(CollectionRecord("c", old.created_at, old.face_model_version, 0.0, False))
        with pytest.raises(InvalidParameterException, match="service minimum floor of 90"):
            service.search_faces(CollectionId="c", FaceId=probe, FaceMatchThreshold=0)
        assert service.search_faces(CollectionId="c", FaceId=probe)["FaceMatches"] == []
        assert service.describe_collection(CollectionId="c")["FaceMatchThresholdFloor"] == DEFAULT_THRESHOLD
        with pytest.raises(InvalidParameterException):
            service.search_users(CollectionId="c", FaceId=probe, UserMatchThreshold=0)

    def test_refused_searches_are_audited_with_the_reason(self, strangers, audit):
        service, probe = strangers
        audit.records.clear()
        with pytest.raises(InvalidParameterException):
            service.search_faces(CollectionId="c", FaceId=probe, FaceMatchThreshold=10)
        with pytest.raises(Exception, match="does not exist"):
            service.search_faces(CollectionId="nope", FaceId=probe)
        refused = [r for r in audit.records if r.status == "refused"]
        assert [(r.operation, r.collection_id, r.threshold) for r in refused] == [
            ("SearchFaces", "c", 10.0),
            ("SearchFaces", "nope", None),
        ]
        assert "floor" in refused[0].error and "ResourceNotFoundException" in refused[1].error
        assert refused[0].query_face_id == probe


class TestUpdateCollection:
    def test_raising_the_floor_is_audited_with_old_and_new(self, strangers, audit):
        service, probe = strangers
        audit.records.clear()
        out = service.update_collection(CollectionId="c", FaceMatchThresholdFloor=95)
        assert out["FaceMatchThresholdFloor"] == 95
        intent, outcome = audit.records
        assert (intent.phase, outcome.phase) == ("intent", "outcome")
        assert intent.operation_id == outcome.operation_id
        assert outcome.details["floor"] == {"old": DEFAULT_THRESHOLD, "new": 95.0}
        with pytest.raises(InvalidParameterException, match="floor of 95"):
            service.search_faces(CollectionId="c", FaceId=probe, FaceMatchThreshold=90)

    def test_never_below_the_service_minimum(self, strangers, audit):
        service, _ = strangers
        with pytest.raises(InvalidParameterException, match="service minimum"):
            service.update_collection(CollectionId="c", FaceMatchThresholdFloor=79.9)
        assert audit.records[-1].status == "refused" and audit.records[-1].operation == "UpdateCollection"

    def test_unknown_parameters_and_wrong_types_are_refused(self, strangers):
        service, _ = strangers
        with pytest.raises(InvalidParameterException, match="does not take"):
            service.update_collection(CollectionId="c", Floor=90)
        with pytest.raises(InvalidParameterException, match="boolean"):
            service.update_collection(CollectionId="c", ReviewRequired="false")

    def test_an_update_that_cannot_be_recorded_is_rolled_back(self, strangers, store):
        service, _ = strangers

        class FailsOnOutcome(MemoryAuditSink):
            def write(self, record):
                if record.phase == "outcome":
                    raise OSError("disk full")
                super().write(record)

        service.audit = FailsOnOutcome()
        with pytest.raises(AuditWriteError, match="rolled back"):
            service.update_collection(CollectionId="c", FaceMatchThresholdFloor=99)
        assert store.get_collection("c").threshold_floor == DEFAULT_THRESHOLD


def test_cli_collection_update_changes_the_floor_through_the_audited_operation(tmp_path, capsys):
    home = ["--data-dir", str(tmp_path)]
    assert main(["collection", "create", "c", *home]) == 0
    assert main(["collection", "update", "c", "--floor", "95", *home]) == 0
    assert main(["collection", "update", "c", "--floor", "50", *home]) == 1
    assert main(["collection", "update", "c", *home]) == 2  # nothing to update: usage
    capsys.readouterr()
    assert main(["audit", "--operation", "UpdateCollection", "--json", *home]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3  # intent + outcome of 95, refusal of 50
    assert main(["collection", "describe", "c", *home]) == 0
    assert '"FaceMatchThresholdFloor": 95.0' in capsys.readouterr().out
