"""Where an OpenSearch k-NN search's time goes: server (`took`) vs wall time, by request shape.

Starts a local OpenSearch (facesearch.devtools.opensearch_local), bulk-loads ``--n`` random 128-d vectors
into one collection with the store's defaults, then times the same queries with different request bodies:
40 candidates with their full ``_source`` (the store's one request until 2026-11-23 17:35), without
``_source``, with fewer candidates and smaller beams, a ``match_all`` for the HTTP floor, and the store's
own ``search`` end to end. Prints one line per shape (wall p50/p95, server p50).

    .venv/bin/python bench/opensearch_search_cost.py --n 50000
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

import facesearch.store  # noqa: F401  (native library order)
from facesearch.devtools.opensearch_local import start
from facesearch.store.opensearch import OpenSearchStore
from facesearch.store.records import CollectionRecord, FaceRecord


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=50_000, help="vectors to load")
    p.add_argument("--queries", type=int, default=200)
    args = p.parse_args()
    server = start()
    try:
        store = OpenSearchStore(server.url, index_prefix="cost-")
        store.create_collection(CollectionRecord("c", datetime.now(UTC), "x", threshold_floor=0.0))
        rng = np.random.default_rng(0)
        data = rng.normal(0, 0.08, (args.n, 128)).astype(np.float32)
        now = datetime.now(UTC)
        box = {"Width": 0.2, "Height": 0.3, "Left": 0.4, "Top": 0.1}
        faces = (FaceRecord(str(uuid.uuid4()), "i", v, box, 99.9, now, quality={"Brightness": 80.0}) for v in data)
        print("load:", {k: round(v, 1) for k, v in store.bulk_load("c", faces).items()})
        queries = data[: args.queries + 20] + rng.normal(0, 0.02, (args.queries + 20, 128)).astype(np.float32)
        alias = store._alias("c")

        def knn(q: np.ndarray, k: int = 40, ef: int = 256, **extra: Any) -> dict[str, Any]:
            vector = {"vector": q.tolist(), "k": k, "method_parameters": {"ef_search": ef}}
            return {"size": k, "query": {"knn": {"vector": vector}}} | extra

        shapes: list[tuple[str, Callable[[np.ndarray], dict[str, Any]]]] = [
            ("40 candidates, ef 256, _source (store before 17:35)", lambda q: knn(q)),
            ("40 candidates, ef 256, no _source", lambda q: knn(q, _source=False)),
            ("40 candidates, ef 256, _source without vector", lambda q: knn(q, _source={"excludes": ["vector"]})),
            ("10 candidates, ef 256, _source", lambda q: knn(q, k=10)),
            ("40 candidates, ef 64, _source", lambda q: knn(q, ef=64)),
            ("10 candidates, ef 16, no _source", lambda q: knn(q, k=10, ef=16, _source=False)),
            ("match_all, size 0 (HTTP floor)", lambda q: {"size": 0, "query": {"match_all": {}}}),
        ]
        for name, body in shapes:
            for q in queries[:20]:
                store.client.search(index=alias, body=body(q))
            wall, took = [], []
            for q in queries[20:]:
                t = time.perf_counter()
                took.append(store.client.search(index=alias, body=body(q))["took"])
                wall.append((time.perf_counter() - t) * 1000)
            print(
                f"{name:52s} wall p50 {np.percentile(wall, 50):6.2f} p95 {np.percentile(wall, 95):6.2f} ms"
                f"  server p50 {np.percentile(took, 50):5.1f} ms"
            )
        for q in queries[:20]:
            store.search("c", q, k=10)
        wall = []
        for q in queries[20:]:
            t = time.perf_counter()
            store.search("c", q, k=10)
            wall.append((time.perf_counter() - t) * 1000)
        name = "OpenSearchStore.search(k=10), end to end"
        print(f"{name:52s} wall p50 {np.percentile(wall, 50):6.2f} p95 {np.percentile(wall, 95):6.2f} ms")
        store.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
