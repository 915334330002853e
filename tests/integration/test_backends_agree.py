"""Both store backends give the same answers on real faces: for every faces-dev photo, searched against a
gallery of all the others, the top-1 identity is the same on embedded and OpenSearch (and it is correct)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pytest

from facesearch.audit import MemoryAuditSink
from facesearch.collections.service import FaceCollectionService
from facesearch.collections.shapes import bounding_box
from facesearch.evaluation import load_labelled_set
from facesearch.store.embedded import EmbeddedStore
from facesearch.store.records import FaceRecord
from facesearch.wiring import build_service

pytestmark = pytest.mark.opensearch


@pytest.fixture(scope="module")
def gallery(engine, faces_dev) -> list[tuple[str, FaceRecord]]:
    data = load_labelled_set(faces_dev)
    out = []
    for name in data.images:
        ids = data.identities.get(name, [])
        if len(ids) != 1:
            continue
        analyzed = engine.analyze((faces_dev / "images" / name).read_bytes())
        face = analyzed.faces[0]
        record = FaceRecord(
            face_id=str(uuid.uuid4()),
            image_id=str(uuid.uuid4()),
            vector=np.asarray(face.descriptor, np.float32),
            bounding_box=bounding_box(face, analyzed.width, analyzed.height),
            confidence=face.confidence,
            indexed_at=datetime.now(UTC),
            external_image_id=f"{ids[0]}:{name}",
        )
        out.append((ids[0], record))
    return out


def top1_identities(service: FaceCollectionService, gallery) -> dict[str, str | None]:
    service.create_collection(CollectionId="dev")
    service.store.add_faces("dev", [record for _, record in gallery])
    top = {}
    for _, record in gallery:
        matches = service.search_faces(CollectionId="dev", FaceId=record.face_id, MaxFaces=1)["FaceMatches"]
        top[record.external_image_id] = matches[0]["Face"]["ExternalImageId"].split(":")[0] if matches else None
    return top


def test_same_top1_identity_on_both_backends(engine, gallery, tmp_path, opensearch_url):
    from facesearch.store.opensearch import OpenSearchStore

    assert len(gallery) == 61
    with EmbeddedStore(tmp_path / "store") as embedded:
        embedded_top = top1_identities(build_service(engine=engine, store=embedded, audit=MemoryAuditSink()), gallery)
    remote = OpenSearchStore(opensearch_url, index_prefix=f"agree-{uuid.uuid4().hex[:8]}-")
    try:
        remote_top = top1_identities(build_service(engine=engine, store=remote, audit=MemoryAuditSink()), gallery)
    finally:
        remote.delete_collection("dev")
        remote.close()
    assert remote_top == embedded_top
    truth = {record.external_image_id: who for who, record in gallery}
    assert embedded_top == truth  # rank-1 61/61 through the whole service, at the default threshold
