"""Documents of a collection's index (faces and users) and the request patterns that read and write them.

A face document carries its descriptor as JSON floats: a float32 converted to a Python float is exact, and
JSON keeps float64 exactly, so the vector round-trips bit for bit — which is what lets the store re-score
candidates exactly from ``_source``. Users are documents of the same index without a vector
(``doc_type: user``), so they go with their collection.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import NotFoundError, TransportError

from facesearch.errors import FaceSearchError, InvalidParameterException, ResourceNotFoundException
from facesearch.store.opensearch.mapping import FACE, USER
from facesearch.store.records import FaceRecord, UserRecord

MAX_K = 10_000  # OpenSearch's k-NN k and index.max_result_window
BULK_CHUNK = 500


class OpenSearchStoreError(FaceSearchError):
    """OpenSearch answered with an error the store cannot map to a Rekognition error."""


def not_found(collection_id: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"The collection id: {collection_id} does not exist")


def error_type(exc: TransportError) -> str:
    return str(exc.error) if exc.error else ""


# -- documents ↔ records ---------------------------------------------------------------------------------
def face_doc(face: FaceRecord, vector: np.ndarray) -> dict[str, Any]:
    """The ``_source`` of a face; ``vector`` is its checked float32 descriptor."""
    return {
        "doc_type": FACE,
        "face_id": face.face_id,
        "image_id": face.image_id,
        "external_image_id": face.external_image_id,
        "user_id": face.user_id,
        "source": face.source,
        "confidence": float(face.confidence),
        "indexed_at": face.indexed_at.isoformat(),
        "bounding_box": {k: float(v) for k, v in face.bounding_box.items()},
        "quality": {k: float(v) for k, v in face.quality.items()},
        # float32 -> Python float is exact, and JSON keeps float64 exactly: bit-for-bit round trip.
        "vector": vector.tolist(),
    }


def face_from_source(src: dict[str, Any]) -> FaceRecord:
    return FaceRecord(
        face_id=src["face_id"],
        image_id=src["image_id"],
        vector=np.asarray(src["vector"], dtype=np.float32),
        bounding_box=dict(src.get("bounding_box") or {}),
        confidence=float(src["confidence"]),
        indexed_at=datetime.fromisoformat(src["indexed_at"]),
        external_image_id=src.get("external_image_id"),
        user_id=src.get("user_id"),
        source=src.get("source"),
        quality=dict(src.get("quality") or {}),
    )


def user_doc(user: UserRecord) -> dict[str, Any]:
    return {"doc_type": USER, "user_id": user.user_id, "created_at": user.created_at.isoformat()}


def user_from_source(src: dict[str, Any], active: bool) -> UserRecord:
    """User status is derived on read (ACTIVE while a face carries the user id), so it cannot drift."""
    return UserRecord(
        user_id=src["user_id"],
        created_at=datetime.fromisoformat(src["created_at"]),
        status="ACTIVE" if active else "CREATED",
    )


# -- requests --------------------------------------------------------------------------------------------
def bulk(client: OpenSearch, collection_id: str, actions: list[dict[str, Any]], refresh: str) -> list[dict[str, Any]]:
    """Run bulk actions (opensearchpy.helpers) in chunks; only the last chunk waits for ``refresh``.

    Returns the per-action result items; a missing collection raises ResourceNotFoundException.
    """
    items: list[dict[str, Any]] = []
    chunks = [actions[i : i + BULK_CHUNK] for i in range(0, len(actions), BULK_CHUNK)]
    for n, chunk in enumerate(chunks):
        last = n == len(chunks) - 1
        results = helpers.streaming_bulk(
            client,
            chunk,
            chunk_size=len(chunk),
            max_chunk_bytes=512 * 1024 * 1024,
            max_retries=0,
            raise_on_error=False,
            raise_on_exception=True,
            yield_ok=True,
            # Earlier chunks need no refresh: one refresh makes everything before it visible.
            refresh=refresh if last else "false",
            require_alias="true",
        )
        for _ok, result in results:
            (op, item) = next(iter(result.items()))
            error = item.get("error")
            if isinstance(error, dict) and error.get("type") == "index_not_found_exception":
                raise not_found(collection_id)
            items.append({"op": op, **item})
    return items


def raise_item_errors(items: list[dict[str, Any]], ignore: tuple[int, ...] = ()) -> None:
    failed = [i for i in items if i.get("status", 500) >= 300 and i.get("status") not in ignore]
    if failed:
        first = failed[0]
        raise OpenSearchStoreError(
            f"{len(failed)} of {len(items)} bulk actions failed; first: {first.get('_id')}: {first.get('error')}"
        )


def mget_faces(client: OpenSearch, alias: str, collection_id: str, doc_ids: list[str]) -> list[FaceRecord | None]:
    """The faces behind ``doc_ids`` in order (one mget); None where a document does not exist."""
    if not doc_ids:
        return []
    try:
        docs = client.mget(index=alias, body={"ids": doc_ids})["docs"]
    except NotFoundError:
        raise not_found(collection_id) from None
    faces: list[FaceRecord | None] = []
    for doc in docs:
        error = doc.get("error")
        if error:
            if isinstance(error, dict) and error.get("type") == "index_not_found_exception":
                raise not_found(collection_id)
            raise OpenSearchStoreError(f"mget failed: {error}")
        faces.append(face_from_source(doc["_source"]) if doc.get("found") else None)
    return faces


def page(
    client: OpenSearch,
    alias: str,
    collection_id: str,
    doc_type: str,
    key: str,
    after: str | None,
    limit: int,
    extra_filters: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One page of ``doc_type`` documents' sources ordered by ``key``, strictly after ``after``."""
    if limit < 1:
        raise InvalidParameterException("limit must be at least 1")
    filters: list[dict[str, Any]] = [{"term": {"doc_type": doc_type}}, *(extra_filters or [])]
    if after is not None:
        filters.append({"range": {key: {"gt": after}}})
    try:
        hits = client.search(
            index=alias,
            body={"size": min(limit, MAX_K), "query": {"bool": {"filter": filters}}, "sort": [{key: "asc"}]},
        )["hits"]["hits"]
    except NotFoundError:
        raise not_found(collection_id) from None
    return [h["_source"] for h in hits]


def search_all(client: OpenSearch, index: str, query: dict[str, Any], sort_field: str) -> Iterator[dict[str, Any]]:
    """Every matching document, in ``sort_field`` order, paging with search_after."""
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"size": 1000, "query": query, "sort": [{sort_field: "asc"}]}
        if after is not None:
            body["search_after"] = after
        hits = client.search(index=index, body=body)["hits"]["hits"]
        yield from hits
        if len(hits) < 1000:
            return
        after = hits[-1]["sort"]


def count(client: OpenSearch, alias: str, collection_id: str, doc_type: str) -> int:
    try:
        return int(client.count(index=alias, body={"query": {"term": {"doc_type": doc_type}}})["count"])
    except NotFoundError:
        raise not_found(collection_id) from None
