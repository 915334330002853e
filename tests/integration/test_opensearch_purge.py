"""OpenSearch: a deleted face's descriptor leaves the segment files once purge_deleted returns.

A Lucene delete only marks the document; the vector stays in the segment's .vec file until a merge
rewrites it, and soft deletes are kept while a retention lease covers them. The test looks at the node's
files themselves (the local test node's data directory) for the descriptor's float32 bytes.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from disk_scan import files_holding
from face_records import T0, face_records

from facesearch.store.opensearch import OpenSearchStore
from facesearch.store.records import DIMENSION, CollectionRecord

pytestmark = pytest.mark.opensearch


def index_dir(store: OpenSearchStore, collection_id: str) -> Path | None:
    """The index's directory on this machine, or None when the node runs elsewhere."""
    index = store._index(collection_id)
    node = next(iter(store.client.nodes.stats(node_id="_local", metric="fs")["nodes"].values()))
    index_uuid = next(iter(store.client.indices.get_settings(index=index).values()))["settings"]["index"]["uuid"]
    path = Path(node["fs"]["data"][0]["path"]) / "indices" / index_uuid
    return path if path.is_dir() else None


def test_purge_erases_deleted_descriptors_from_the_segments(opensearch_url: str) -> None:
    store = OpenSearchStore(opensearch_url, index_prefix=f"t-purge-{uuid.uuid4().hex[:8]}-")
    vectors = np.random.default_rng(3).normal(0, 0.05, (40, DIMENSION)).astype(np.float32)
    try:
        store.create_collection(CollectionRecord("c", T0, "test"))
        store.add_faces("c", face_records(vectors))
        store.client.indices.flush(index=store._index("c"))  # segments on disk, as after any real load
        root = index_dir(store, "c")
        if root is not None:
            assert files_holding(root, vectors[5])  # the scan does see descriptors on disk

        assert store.delete_faces("c", ["face-000005"]) == ["face-000005"]
        if root is not None:
            assert files_holding(root, vectors[5])  # unsearchable, but still in the segment

        report = store.purge_deleted("c")

        assert report["purged"] and report["docs"] == 39 and report["deleted_docs"] == 0
        if root is not None:
            assert files_holding(root, vectors[5]) == []
            assert files_holding(root, vectors[6])  # the faces kept are still there
        assert [h.face.face_id for h in store.search("c", vectors[6], k=1)] == ["face-000006"]
    finally:
        store.delete_collection("c")
        store.close()
