"""Maintenance of a collection's index: bulk loading, force merging, purging deleted faces, segment statistics.

These run when writes are quiet (imports, re-indexing, erasure requests); the OpenSearchStore methods of the
same names delegate here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import NotFoundError

from facesearch.errors import InvalidParameterException
from facesearch.store.base import checked_vector
from facesearch.store.opensearch.documents import OpenSearchStoreError, face_doc, not_found
from facesearch.store.opensearch.mapping import face_doc_id
from facesearch.store.records import FaceRecord


def bulk_load(
    client: OpenSearch,
    *,
    alias: str,
    index: str,
    collection_id: str,
    faces: Iterable[FaceRecord],
    refresh_interval: str,
    timeout: float,
    chunk_size: int = 2000,
    threads: int = 2,
    max_segments: int | None = 1,
    flush_threshold: str = "16gb",
) -> dict[str, float]:
    """Load many faces at once (initial import, re-index); durable and searchable on return, like add_faces.

    Instead of a ``wait_for`` refresh per call, the collection's periodic refresh is switched off (and the
    translog size that forces a flush raised to ``flush_threshold``, so segments are cut by the node's
    indexing buffer, not by the translog: fewer, larger segments whose HNSW graphs need no rebuilding in
    merges — Lucene's merge keeps the largest segment's graph and inserts the others) while
    ``threads`` concurrent bulk requests of ``chunk_size`` faces stream in (each bulk runs on one write
    thread of the node, so two keep two cores building HNSW graphs), then the refresh interval is
    restored, one refresh makes everything visible and, unless ``max_segments`` is None, the index is
    force-merged to that many segments (one Lucene HNSW graph per segment is searched per query, so
    fewer segments means faster, and usually more stable, searches). Durability is the same as
    add_faces: each bulk is acknowledged after its translog fsync. A concurrent add_faces with
    ``refresh="wait_for"`` waits until the load ends. Face ids must be new (``create``); on a failure
    the faces loaded so far stay and the error is raised. Returns timings in seconds.
    """
    seen: set[str] = set()

    def actions() -> Iterator[dict[str, Any]]:
        for f in faces:
            if f.face_id in seen:
                raise InvalidParameterException("duplicate face ids in one bulk_load call")
            seen.add(f.face_id)
            yield {
                "_op_type": "create",
                "_index": alias,
                "_id": face_doc_id(f.face_id),
                "_source": face_doc(f, checked_vector(f.vector)),
            }

    timings: dict[str, float] = {}
    began = time.perf_counter()
    loading = {"refresh_interval": "-1", "translog.flush_threshold_size": flush_threshold}
    client.indices.put_settings(index=index, body={"index": loading})
    try:
        results = helpers.parallel_bulk(
            client,
            actions(),
            thread_count=max(1, threads),
            chunk_size=chunk_size,
            max_chunk_bytes=512 * 1024 * 1024,
            raise_on_error=False,
            raise_on_exception=True,
            require_alias="true",
            request_timeout=max(timeout, 300.0),
        )
        for ok, result in results:
            if ok:
                continue
            (_op, item) = next(iter(result.items()))
            error = item.get("error")
            if isinstance(error, dict) and error.get("type") == "index_not_found_exception":
                raise not_found(collection_id)
            if item.get("status") == 409:
                raise InvalidParameterException("a face id already exists in this collection")
            raise OpenSearchStoreError(f"bulk load failed at {item.get('_id')}: {error}")
    finally:
        restored = {"refresh_interval": refresh_interval, "translog.flush_threshold_size": None}
        client.indices.put_settings(index=index, body={"index": restored})
    timings["bulk_s"] = time.perf_counter() - began
    t = time.perf_counter()
    client.indices.refresh(index=index, request_timeout=max(timeout, 600.0))
    timings["refresh_s"] = time.perf_counter() - t
    if max_segments is not None:
        t = time.perf_counter()
        optimize(client, index=index, collection_id=collection_id, max_segments=max_segments, refresh_timeout=timeout)
        timings["merge_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - began
    return timings


def optimize(
    client: OpenSearch,
    *,
    index: str,
    collection_id: str,
    max_segments: int = 1,
    timeout: float = 3600.0,
    refresh_timeout: float = 30.0,
) -> None:
    """Force-merge the collection's index to at most ``max_segments`` segments (after a large load, when
    writes are quiet: merging rebuilds HNSW graphs and takes minutes per million faces)."""
    try:
        client.indices.forcemerge(index=index, max_num_segments=max_segments, request_timeout=timeout)
        client.indices.refresh(index=index, request_timeout=max(refresh_timeout, 600.0))
    except NotFoundError:
        raise not_found(collection_id) from None


def purge_deleted(client: OpenSearch, *, index: str, collection_id: str, timeout: float = 300.0) -> dict[str, Any]:
    """Expunge deleted faces from the collection's segment files. A Lucene delete only marks a document;
    its vector and ``_source`` stay in the segment until a merge rewrites it, and a soft-deleted document
    is kept while a retention lease (peer recovery; synced every 30 s by default) still covers its
    operation. So: flush (persists the checkpoint and rolls the translog), wait until every lease has
    moved past the last operation, then ``_forcemerge?only_expunge_deletes=true``. What may remain are
    delete tombstones (an id and a sequence number, no face data). Rewrites every segment with deletions,
    so run it when writes are quiet (the CLI: ``facesearch faces purge``)."""
    began = time.perf_counter()
    try:
        client.indices.flush(index=index, params={"wait_if_ongoing": "true"})
        last_op = max(_shard_seq_nos(client, index))
        while min(_lease_seq_nos(client, index)) <= last_op:
            if time.perf_counter() - began > timeout:
                raise InvalidParameterException(
                    f"purge of {collection_id}: retention leases still cover deleted documents after {timeout} s"
                )
            time.sleep(1.0)
        waited = time.perf_counter() - began
        # By default a segment is only rewritten if more than 10 % of it is deleted; one face must be enough.
        client.indices.put_settings(index=index, body={"index.merge.policy.expunge_deletes_allowed": 0})
        client.indices.forcemerge(
            index=index, params={"only_expunge_deletes": "true"}, request_timeout=max(timeout, 60.0)
        )
        client.indices.refresh(index=index)
    except NotFoundError:
        raise not_found(collection_id) from None
    return {"backend": "opensearch", "purged": True, "lease_wait_s": round(waited, 1)} | segment_stats(
        client, index=index, collection_id=collection_id
    )


def segment_stats(client: OpenSearch, *, index: str, collection_id: str) -> dict[str, int]:
    """Segment count and on-disk size of the collection's index (for benchmarks and health)."""
    try:
        stats = client.indices.stats(index=index, metric="segments,store,docs")
    except NotFoundError:
        raise not_found(collection_id) from None
    total = next(iter(stats["indices"].values()))["primaries"]
    return {
        "segments": int(total["segments"]["count"]),
        "store_bytes": int(total["store"]["size_in_bytes"]),
        "docs": int(total["docs"]["count"]),
        "deleted_docs": int(total["docs"]["deleted"]),
    }


def _shard_stats(client: OpenSearch, index: str) -> list[dict[str, Any]]:
    stats = client.indices.stats(index=index, level="shards", metric="docs")
    return [copy for shard in next(iter(stats["indices"].values()))["shards"].values() for copy in shard]


def _shard_seq_nos(client: OpenSearch, index: str) -> list[int]:
    return [int(s["seq_no"]["max_seq_no"]) for s in _shard_stats(client, index)]


def _lease_seq_nos(client: OpenSearch, index: str) -> list[int]:
    """The lowest sequence number each shard copy's retention leases still keep soft-deleted docs for."""
    out = []
    for shard in _shard_stats(client, index):
        leases = (shard.get("retention_leases") or {}).get("leases") or []
        out.append(min((int(lease["retaining_seq_no"]) for lease in leases), default=2**63 - 1))
    return out
