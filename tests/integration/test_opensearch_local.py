"""Smoke test: the locally provisioned OpenSearch really does lucene HNSW k-NN search."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from opensearchpy import OpenSearch, helpers

pytestmark = pytest.mark.opensearch


def test_lucene_hnsw_knn_returns_nearest(opensearch_url: str) -> None:
    client = OpenSearch(opensearch_url, timeout=30)
    index = f"smoke-{uuid.uuid4().hex}"
    client.indices.create(
        index=index,
        body={
            "settings": {"index": {"knn": True, "number_of_shards": 1, "number_of_replicas": 0}},
            "mappings": {
                "properties": {
                    "vector": {
                        "type": "knn_vector",
                        "dimension": 128,
                        # The engine must be named: the Maven Central plugin has no native faiss library.
                        "method": {"name": "hnsw", "engine": "lucene", "space_type": "l2"},
                    },
                    "label": {"type": "keyword"},
                }
            },
        },
    )
    try:
        rng = np.random.default_rng(7)
        vectors = rng.standard_normal((20, 128)).astype(np.float32)
        ok, errors = helpers.bulk(
            client,
            (
                {"_index": index, "_id": f"v{i}", "vector": v.tolist(), "label": f"label-{i}"}
                for i, v in enumerate(vectors)
            ),
            refresh=True,
        )
        assert ok == 20 and not errors
        assert client.count(index=index)["count"] == 20

        target = 13
        query = vectors[target] + rng.normal(scale=0.01, size=128).astype(np.float32)
        result = client.search(
            index=index,
            body={"size": 3, "query": {"knn": {"vector": {"vector": query.tolist(), "k": 3}}}},
        )
        hits = result["hits"]["hits"]
        assert hits[0]["_id"] == f"v{target}"
        assert hits[0]["_source"]["label"] == f"label-{target}"
        expected = np.argsort(np.linalg.norm(vectors - query, axis=1))[:3]
        assert [h["_id"] for h in hits] == [f"v{i}" for i in expected]
        # lucene l2 score is 1 / (1 + squared distance)
        d2 = float(np.sum((vectors[target] - query) ** 2))
        assert hits[0]["_score"] == pytest.approx(1.0 / (1.0 + d2), rel=1e-3)
    finally:
        client.indices.delete(index=index)
