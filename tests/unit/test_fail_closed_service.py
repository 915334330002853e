"""Fail closed, without models: no record, no result; no intent record, no change; an outcome that cannot be
recorded is a clear error (and rolled back where the change can be undone). Faces are put in the store directly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pytest

from facesearch.audit import AuditRecord, MemoryAuditSink
from facesearch.errors import AuditWriteError
from facesearch.settings import load_settings
from facesearch.store.embedded import EmbeddedStore
from facesearch.store.records import FaceRecord
from facesearch.wiring import build_service


class Sink(MemoryAuditSink):
    """Fails every write for which ``fail(record)`` is true, as a full disk would."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = lambda record: False

    def write(self, record: AuditRecord) -> None:
        if self.fail(record):
            raise OSError(28, "No space left on device")
        super().write(record)


@pytest.fixture
def setup(tmp_path):
    store = EmbeddedStore(tmp_path / "store")
    sink = Sink()
    service = build_service(load_settings(), engine=object(), store=store, audit=sink)
    service.create_collection(CollectionId="c")
    base = np.random.default_rng(1).normal(size=128) * 0.06
    vectors = [base, base + 0.001]  # the same person twice
    ids = [str(uuid.uuid4()) for _ in vectors]
    store.add_faces(
        "c",
        [
            FaceRecord(
                fid,
                "img",
                v.astype(np.float32),
                {"Width": 1.0, "Height": 1.0, "Left": 0.0, "Top": 0.0},
                99.0,
                datetime(2024, 1, 1, tzinfo=UTC),
            )
            for fid, v in zip(ids, vectors, strict=True)
        ],
    )
    yield service, store, sink, ids
    store.close()


def test_no_search_result_without_its_record(setup):
    service, _, sink, ids = setup
    assert service.search_faces(CollectionId="c", FaceId=ids[0])["FaceMatches"]  # the two faces match
    sink.fail = lambda r: r.operation == "SearchFaces"
    with pytest.raises(AuditWriteError, match="result is withheld"):
        service.search_faces(CollectionId="c", FaceId=ids[0])


def test_no_deletion_without_its_intent_record(setup):
    service, store, sink, ids = setup
    sink.fail = lambda r: r.operation == "DeleteFaces" and r.phase == "intent"
    with pytest.raises(AuditWriteError, match="nothing was changed"):
        service.delete_faces(CollectionId="c", FaceIds=[ids[0]])
    assert store.count_faces("c") == 2


def test_a_deletion_whose_outcome_cannot_be_recorded_is_an_error_named_by_its_intent(setup):
    service, store, sink, ids = setup
    sink.fail = lambda r: r.operation == "DeleteFaces" and r.phase == "outcome"
    with pytest.raises(AuditWriteError, match="the change was made; its intent record names it"):
        service.delete_faces(CollectionId="c", FaceIds=[ids[0]])
    [intent] = [r for r in sink.records if r.operation == "DeleteFaces"]
    assert intent.phase == "intent" and intent.results == [{"FaceId": ids[0]}]
    assert store.count_faces("c") == 1
    sink.fail = lambda r: False  # a retry is harmless: the face is reported as not found
    out = service.delete_faces(CollectionId="c", FaceIds=[ids[0]])
    assert out["UnsuccessfulFaceDeletions"][0]["Reasons"] == ["FACE_NOT_FOUND"]


def test_a_collection_whose_creation_cannot_be_recorded_is_rolled_back(setup):
    service, store, sink, _ = setup
    sink.fail = lambda r: r.operation == "CreateCollection" and r.phase == "outcome"
    with pytest.raises(AuditWriteError, match="rolled back"):
        service.create_collection(CollectionId="d")
    assert [c.collection_id for c in store.list_collections()] == ["c"]


def test_a_failed_change_gets_a_failed_outcome(setup, monkeypatch):
    service, store, sink, ids = setup

    def broken(*args, **kwargs):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(store, "delete_faces", broken)
    with pytest.raises(OSError):
        service.delete_faces(CollectionId="c", FaceIds=[ids[0]])
    intent, outcome = [r for r in sink.records if r.operation == "DeleteFaces"]
    assert (intent.phase, outcome.phase, outcome.status) == ("intent", "outcome", "failed")
    assert intent.operation_id == outcome.operation_id and "I/O error" in outcome.error


def test_a_full_disk_under_the_store_reaches_the_caller_typed_and_recorded(setup, monkeypatch):
    from facesearch.errors import StorageFullError

    service, store, sink, ids = setup

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "delete_faces", full)
    with pytest.raises(StorageFullError, match="no space left"):
        service.delete_faces(CollectionId="c", FaceIds=[ids[0]])
    assert sink.records[-1].phase == "outcome" and sink.records[-1].status == "failed"


def test_no_erasure_without_its_intent_record(setup):
    import dataclasses

    service, store, sink, ids = setup
    alice = dataclasses.replace(
        store.get_faces("c", [ids[0]])[ids[0]], face_id=str(uuid.uuid4()), external_image_id="alice"
    )
    store.add_faces("c", [alice])
    sink.fail = lambda r: r.operation == "EraseFaces" and r.phase == "intent"
    with pytest.raises(AuditWriteError, match="nothing was changed"):
        service.erase_faces(CollectionId="c", ExternalImageId="alice")
    assert alice.face_id in store.get_faces("c", [alice.face_id])
    sink.fail = lambda r: False
    assert service.erase_faces(CollectionId="c", ExternalImageId="alice")["DeletedFaces"] == [alice.face_id]
    intent, outcome = [r for r in sink.records if r.operation == "EraseFaces"]
    assert intent.results == outcome.results == [{"FaceId": alice.face_id}]
