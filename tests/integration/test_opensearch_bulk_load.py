"""OpenSearchStore.bulk_load / optimize against a real local OpenSearch (the ``opensearch_url`` fixture)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from facesearch.errors import InvalidParameterException, ResourceNotFoundException
from facesearch.store.opensearch import OpenSearchStore
from facesearch.store.records import DIMENSION, CollectionRecord, FaceRecord

pytestmark = pytest.mark.opensearch
T0 = datetime(2024, 5, 17, 9, 30, tzinfo=UTC)


def faces(vectors: np.ndarray, start: int = 0) -> list[FaceRecord]:
    return [
        FaceRecord(
            face_id=f"face-{start + i:06d}",
            image_id=f"img-{start + i}",
            vector=v,
            bounding_box={"Width": 0.1, "Height": 0.1, "Left": 0.2, "Top": 0.2},
            confidence=99.0,
            indexed_at=T0,
        )
        for i, v in enumerate(vectors)
    ]


@pytest.fixture
def store(opensearch_url: str) -> Iterator[OpenSearchStore]:
    s = OpenSearchStore(opensearch_url, index_prefix=f"fsbulk-{uuid.uuid4().hex[:12]}-", exact_filter_below=-1)
    s.create_collection(CollectionRecord("c", T0, "test"))
    try:
        yield s
    finally:
        for record in s.list_collections():
            s.delete_collection(record.collection_id)
        s.close()


def test_bulk_load_is_searchable_on_return_and_merged_to_one_segment(store: OpenSearchStore) -> None:
    vectors = np.random.default_rng(1).normal(0, 0.05, (3000, DIMENSION)).astype(np.float32)
    timings = store.bulk_load("c", iter(faces(vectors)), chunk_size=500)
    assert set(timings) >= {"bulk_s", "refresh_s", "merge_s", "total_s"}
    assert store.count_faces("c") == 3000
    assert store.segment_stats("c")["segments"] == 1
    settings = store.client.indices.get_settings(index=store._index("c"))
    index_settings = next(iter(settings.values()))["settings"]["index"]
    assert index_settings["refresh_interval"] == store.refresh_interval
    assert "flush_threshold_size" not in index_settings.get("translog", {})  # the load's setting is gone
    # the refresh interval is restored: a normal add_faces (wait_for) returns and is visible
    store.add_faces("c", faces(vectors[:1] + 0.01, start=3000))
    assert store.count_faces("c") == 3001
    for i in (0, 1234, 2999):
        hits = store.search("c", vectors[i], k=3)
        assert hits[0].face.face_id == f"face-{i:06d}" and hits[0].distance == 0.0
        assert [h.distance for h in hits] == sorted(h.distance for h in hits)
        assert np.array_equal(hits[0].face.vector, vectors[i])


def test_bulk_load_refuses_existing_or_repeated_ids_and_unknown_collections(store: OpenSearchStore) -> None:
    vectors = np.random.default_rng(2).normal(0, 0.05, (10, DIMENSION)).astype(np.float32)
    store.add_faces("c", faces(vectors[:2]))
    with pytest.raises(InvalidParameterException):
        store.bulk_load("c", faces(vectors[1:5]), max_segments=None)  # face-000001 exists
    with pytest.raises(InvalidParameterException):
        store.bulk_load("c", faces(vectors[5:6]) + faces(vectors[6:7], start=5), max_segments=None)
    with pytest.raises(ResourceNotFoundException):
        store.bulk_load("missing", faces(vectors[:1]))
    with pytest.raises(ResourceNotFoundException):
        store.optimize("missing")
    # refresh interval restored after the failures
    settings = store.client.indices.get_settings(index=store._index("c"))
    assert next(iter(settings.values()))["settings"]["index"]["refresh_interval"] == store.refresh_interval
