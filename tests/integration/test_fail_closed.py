"""Fail closed, proven by fault injection: the audit log fails on the N-th write, for every N across an index,
search, delete, search run. Whatever N is, no face is stored or deleted without its record, no search result
is returned without its record, a retry duplicates nothing, and the sealed log still verifies."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path
from typing import Any

import pytest

from facesearch.audit import AuditRecord, ChainedAuditSink, JsonlAuditSink, JsonlCheckpointStore
from facesearch.audit.verify import verify
from facesearch.errors import AuditWriteError
from facesearch.settings import load_settings
from facesearch.store.embedded import EmbeddedStore
from facesearch.wiring import build_service

KEY = b"fault-injection-key"


class CachedEngine:
    """The real engine, each image analysed once for the whole test (the run is repeated for every N)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.cache: dict[tuple[str, str], Any] = {}

    def analyze(self, data: bytes, **kwargs: Any) -> Any:
        key = (hashlib.sha256(data).hexdigest(), repr(sorted(kwargs.items())))
        if key not in self.cache:
            self.cache[key] = self.engine.analyze(data, **kwargs)
        return self.cache[key]


class FailingOnce(JsonlAuditSink):
    """A JSONL log whose N-th write fails as a full disk does (nothing written)."""

    def __init__(self, path: Path, fail_at: int) -> None:
        super().__init__(path)
        self.fail_at, self.writes = fail_at, 0

    def write(self, record: AuditRecord) -> None:
        self.writes += 1
        if self.writes == self.fail_at:
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        super().write(record)


@pytest.fixture(scope="module")
def cached_engine(engine) -> CachedEngine:
    return CachedEngine(engine)


def written(sink: JsonlAuditSink) -> list[dict[str, Any]]:
    return list(sink.read())


def listed_in(records: list[dict[str, Any]], operation: str, face_id: str) -> bool:
    return any(
        r["operation"] == operation
        and r.get("phase") == "intent"
        and face_id in {x.get("FaceId") for x in r["results"]}
        for r in records
    )


# A clean run writes 8 records: IndexFaces ×2 (intent + outcome each), a search, DeleteFaces (intent + outcome),
# a search. N = 9 is the run without a failure.
@pytest.mark.parametrize("fail_at", range(1, 10))
def test_audit_failure_at_every_write_leaves_nothing_unrecorded(fail_at, cached_engine, faces_dev, tmp_path):
    photo = {n: {"Bytes": (faces_dev / "images" / n).read_bytes()} for n in ("img1.jpg", "img29.jpg", "img4.jpg")}
    store = EmbeddedStore(tmp_path / "store")
    log = FailingOnce(tmp_path / "audit.jsonl", fail_at=10**9)
    checkpoints = JsonlCheckpointStore(tmp_path / "checkpoints.jsonl", KEY)
    sink = ChainedAuditSink(log, KEY, checkpoints=checkpoints, checkpoint_every=3)
    service = build_service(load_settings(), engine=cached_engine, store=store, audit=sink)
    service.create_collection(CollectionId="c")
    log.writes, log.fail_at = 0, fail_at
    ever_stored: set[str] = set()
    failures = 0

    def check_invariants() -> None:
        records = written(log)
        present = {f.face_id for f in store.list_faces("c", limit=100)}
        ever_stored.update(present)
        for fid in present:
            assert listed_in(records, "IndexFaces", fid), f"face {fid} stored without an IndexFaces record"
        for fid in ever_stored - present:
            assert listed_in(records, "DeleteFaces", fid), f"face {fid} deleted without a DeleteFaces record"

    def attempt(call: Any, **params: Any) -> dict[str, Any]:
        nonlocal failures
        try:
            out = call(**params)
        except AuditWriteError:
            failures += 1
            check_invariants()
            out = call(**params)  # the caller retries; the disk has space again
        check_invariants()
        return out

    def search() -> list[str]:
        before = len(written(log))
        out = attempt(service.search_faces_by_image, CollectionId="c", Image=photo["img4.jpg"])
        record = written(log)[-1]
        assert len(written(log)) > before and record["operation"] == "SearchFacesByImage"
        assert record["status"] == "ok"  # the result returned is the result recorded
        assert [(r["FaceId"], r["Similarity"]) for r in record["results"]] == [
            (m["Face"]["FaceId"], m["Similarity"]) for m in out["FaceMatches"]
        ]
        return [m["Face"]["ExternalImageId"] for m in out["FaceMatches"]]

    a = attempt(service.index_faces, CollectionId="c", Image=photo["img1.jpg"], ExternalImageId="alice", MaxFaces=1)
    attempt(service.index_faces, CollectionId="c", Image=photo["img29.jpg"], ExternalImageId="bob", MaxFaces=1)
    assert store.count_faces("c") == 2  # a retried index stored nothing twice
    assert search() == ["alice"]
    alice = a["FaceRecords"][0]["Face"]["FaceId"]
    attempt(service.delete_faces, CollectionId="c", FaceIds=[alice])
    assert [f.external_image_id for f in store.list_faces("c", limit=100)] == ["bob"]
    assert search() == []

    assert failures == (1 if fail_at <= 8 else 0)
    report = verify(log.scan(), KEY, checkpoints, checkpoint_every=3)
    assert report.ok, [str(f) for f in report.findings]
    store.close()


def test_refused_and_failed_searches_are_audited_with_the_reason(cached_engine, faces_dev, tmp_path):
    from facesearch.audit import MemoryAuditSink
    from facesearch.errors import FaceSearchError

    audit = MemoryAuditSink()
    store = EmbeddedStore(tmp_path / "store")
    service = build_service(load_settings(), engine=cached_engine, store=store, audit=audit)
    service.create_collection(CollectionId="c")
    face = {"Bytes": (faces_dev / "images" / "img1.jpg").read_bytes()}
    import io

    from PIL import Image

    blank = io.BytesIO()
    Image.new("RGB", (320, 240), (120, 130, 140)).save(blank, "JPEG")
    attempts = [
        ({"CollectionId": "c", "Image": face, "FaceMatchThreshold": 50}, "below the floor", "floor"),
        ({"CollectionId": "c", "Image": {"Bytes": blank.getvalue()}}, "no face", "no faces"),
        ({"CollectionId": "c", "Image": {"Bytes": b"\xff\xd8\xff garbage"}}, "corrupt image", "InvalidImageFormat"),
        ({"CollectionId": "missing", "Image": face}, "unknown collection", "ResourceNotFound"),
    ]
    refusals = []
    for params, what, reason in attempts:
        audit.records.clear()
        with pytest.raises(FaceSearchError):
            service.search_faces_by_image(**params)
        [record] = audit.records
        assert record.operation == "SearchFacesByImage" and record.status == "refused", what
        assert reason in (record.error or ""), (what, record.error)
        assert record.collection_id == params["CollectionId"]
        refusals.append(record)
    assert refusals[0].threshold == 50  # the attempt to go below the floor, with the photo it used
    assert refusals[0].query_image_sha256 == hashlib.sha256(face["Bytes"]).hexdigest()
    store.close()
