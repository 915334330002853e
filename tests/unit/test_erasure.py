"""Erasure: a person is deleted for good by ExternalImageId or by user, through one audited service operation
(what the CLI, the S3 ObjectRemoved handler and an erasure request all call). No models needed: the faces are
stored directly with synthetic descriptors."""

from __future__ import annotations

import dataclasses
import uuid

import numpy as np
import pytest
from face_records import face_records

from facesearch.audit import MemoryAuditSink
from facesearch.cli import main
from facesearch.errors import InvalidParameterException, ResourceNotFoundException
from facesearch.settings import load_settings
from facesearch.wiring import build_service


def _uuid(i: int) -> str:
    return str(uuid.UUID(int=i + 1, version=4))


@pytest.fixture
def service(tmp_path):
    audit = MemoryAuditSink()
    svc = build_service(load_settings(backend="embedded", home=tmp_path), audit=audit)
    svc.create_collection(CollectionId="c")
    rng = np.random.default_rng(0)
    records = face_records(rng.normal(size=(6, 128)).astype(np.float32) * 0.1)
    people = ["alice", "alice", "bob", "bob", "carol", None]
    svc.store.add_faces(
        "c",
        [
            dataclasses.replace(r, face_id=_uuid(i), external_image_id=p)
            for i, (r, p) in enumerate(zip(records, people, strict=True))
        ],
    )
    yield svc
    svc.store.close()


def _remaining(svc) -> list[str | None]:
    return sorted((f.get("ExternalImageId") or "-") for f in svc.list_faces(CollectionId="c")["Faces"])


def test_erase_by_external_image_id_deletes_exactly_that_persons_faces_and_audits_it(service):
    out = service.erase_faces(CollectionId="c", ExternalImageId="alice")
    assert sorted(out["DeletedFaces"]) == [_uuid(0), _uuid(1)]
    assert _remaining(service) == ["-", "bob", "bob", "carol"]
    record = service.audit.records[-1]
    assert record.operation == "EraseFaces" and record.details == {"external_image_id": "alice"}
    assert sorted(r["FaceId"] for r in record.results) == sorted(out["DeletedFaces"])


def test_erase_by_user_deletes_the_users_faces_and_the_user(service):
    service.create_user(CollectionId="c", UserId="u-bob")
    service.associate_faces(CollectionId="c", UserId="u-bob", FaceIds=[_uuid(2), _uuid(3)], UserMatchThreshold=0)
    out = service.erase_faces(CollectionId="c", UserId="u-bob")
    assert sorted(out["DeletedFaces"]) == [_uuid(2), _uuid(3)] and out["DeletedUser"] == "u-bob"
    assert _remaining(service) == ["-", "alice", "alice", "carol"]
    assert service.list_users(CollectionId="c")["Users"] == []


def test_erase_needs_exactly_one_key_and_an_existing_collection(service):
    with pytest.raises(InvalidParameterException):
        service.erase_faces(CollectionId="c")
    with pytest.raises(InvalidParameterException):
        service.erase_faces(CollectionId="c", ExternalImageId="alice", UserId="u")
    with pytest.raises(ResourceNotFoundException):
        service.erase_faces(CollectionId="nope", ExternalImageId="alice")
    with pytest.raises(ResourceNotFoundException):
        service.erase_faces(CollectionId="c", UserId="nobody")


def test_the_cli_erases_through_the_service_operation(service, tmp_path, capsys):
    service.store.close()
    assert main(["faces", "delete", "--collection", "c", "--external-id", "bob", "--data-dir", str(tmp_path)]) == 0
    assert '"DeletedFaces"' in capsys.readouterr().out
    again = build_service(load_settings(backend="embedded", home=tmp_path), audit=MemoryAuditSink())
    with again.store:
        assert sorted(f.get("ExternalImageId") or "-" for f in again.list_faces(CollectionId="c")["Faces"]) == [
            "-",
            "alice",
            "alice",
            "carol",
        ]
