"""OpenSearch vector store: one k-NN index per collection (self-hosted OpenSearch or Amazon OpenSearch Service).

Isolation. Every collection is its own index (``<prefix><slug>-<sha256(id)[:16]>-v1``) reached through an
alias of the same name without ``-v1``, as base.py asks:

* a search runs on one index, so it needs no filter and no other collection's face can ever appear;
* deleting a collection deletes its index: every vector, face and user in it goes at once, for good
  (no delete-by-query that could leave stragglers);
* the collection's settings live in the index mapping's ``_meta``, so a collection exists exactly when its
  index does — there is no second catalogue to get out of step, and creating is atomic (a second create
  fails with ``resource_already_exists_exception``);
* users are documents of the same index (``doc_type: user``, no vector), so they go with the collection;
* every write addresses the alias with ``require_alias=true``: a write racing a delete fails with
  "not found" instead of silently auto-creating an index with a dynamic (non k-NN) mapping, and a later
  re-index (new engine or HNSW parameters) can swap the alias atomically.

Index names must be lowercase, collection ids are case-sensitive (``A0`` ≠ ``a0``), so the name carries a
readable lowercase slug plus a hash of the exact id; the real id is in ``_meta``.

Vectors. ``knn_vector`` of dimension 128, HNSW, ``space_type: l2`` (our distance is euclidean). The
engine is always named in the mapping: ``lucene`` by default — the only one the Maven Central k-NN plugin
can run (its zip has no native faiss/nmslib libraries, and writing to a faiss field kills that node) —
and ``faiss`` is accepted only against Amazon OpenSearch Service (SigV4), whose plugin has them.

Exact distances. The k-NN query returns candidates ranked by the engine's float32 score; the vectors come
back in ``_source`` (their JSON floats are the float32 values exactly, so they round-trip bit for bit), are
re-scored in float64 with numpy, ``max_distance`` is applied to that exact distance, and hits are sorted
by (distance, face_id). More candidates than ``k`` are asked for, and the request is widened when the
k-th exact distance (or the threshold) is not clearly inside the farthest candidate. For collections of
at most ``exact_filter_below`` faces (20k; the count is cached for ``size_ttl`` seconds and adjusted by
this store's writes) the k-NN query carries a ``doc_type: face`` filter that matches every vector of the
index: with Lucene that costs no recall, and it lets Lucene scan a segment exactly when it holds no more
faces than candidates asked for (small collections are searched exhaustively). Larger collections go
without it: the filter's bitset is built per query at ~2.5 ms per 100k faces.

Searchable on return. Writes use ``refresh="wait_for"`` by default: the call returns once a refresh has
made the documents visible, and concurrent writers share the scheduled refresh (``refresh_interval``,
1s by default). ``refresh=True`` would force a refresh per call, i.e. a new Lucene segment — and a new
HNSW graph to build, search and later merge — per IndexFaces call, which is what degrades k-NN indices
under steady small writes. The price of ``wait_for`` is up to one refresh interval of latency per write;
``refresh="true"`` is available for callers that prefer latency over segment count. Durability does not
depend on it: the translog is fsynced before OpenSearch acknowledges (``index.translog.durability:
request``, the default).

Search beam. Lucene's HNSW search explores ``max(k, ef_search)`` candidates per segment; the store asks
for ``k = max(k * candidates_factor, candidates_min)`` hits without their ``_source`` (ids and scores
only), then fetches (one ``mget``) just the candidates whose engine distance could place them in the result
— within ``rescore_margin`` of the k-th and of the threshold, usually about k documents — and re-scores
those exactly from their stored float32 vectors. Shipping 40 documents' JSON vectors cost ~5 ms of a
13 ms search at 50k faces (bench/opensearch_search_cost.py). It passes ``method_parameters.ef_search``
(OpenSearch ≥ 2.16) so the graph search can be wider than the candidate list: recall comes from
``ef_search``. With ``ef_search=None`` the parameter is not sent (older servers). faiss (Amazon OpenSearch
Service) uses the index setting ``knn.algo_param.ef_search`` instead.

Bulk loading. ``bulk_load`` is for imports and re-indexing: no refresh per call, two concurrent bulk
requests, then one refresh and a force merge to one segment (one HNSW graph to search instead of a dozen).
It keeps add_faces' guarantees (durable and searchable on return) but holds back concurrent ``wait_for``
writers until it ends. Merging rebuilds graphs: minutes per million faces on two cores.

User status (CREATED/ACTIVE) is derived on read from whether any face carries the user id, so it can
never drift from the faces.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import ConflictError, NotFoundError, RequestError, TransportError

from facesearch.errors import (
    FaceSearchError,
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from facesearch.store.base import VectorStore
from facesearch.store.records import DIMENSION, CollectionRecord, FaceRecord, Neighbor, UserRecord

SCHEMA_VERSION = 1
ENGINES = ("lucene", "faiss")
MAX_K = 10_000  # OpenSearch's k-NN k and index.max_result_window
_BULK_CHUNK = 500
_FACE = "face"
_USER = "user"
_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,98}$")
_SLUG_RE = re.compile(r"[^a-z0-9_\-]")


class OpenSearchStoreError(FaceSearchError):
    """OpenSearch answered with an error the store cannot map to a Rekognition error."""


def _vector(vector: Any) -> np.ndarray:
    v = np.asarray(vector)
    if v.shape != (DIMENSION,):
        raise InvalidParameterException(f"face vector must have shape ({DIMENSION},), got {v.shape}")
    v = np.ascontiguousarray(v, dtype=np.float32)
    if not np.isfinite(v).all():
        raise InvalidParameterException("face vector must be finite")
    return v


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _not_found(collection_id: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"The collection id: {collection_id} does not exist")


def _error_type(exc: TransportError) -> str:
    return str(exc.error) if exc.error else ""


class OpenSearchStore(VectorStore):
    """VectorStore on OpenSearch with the k-NN plugin. See the module docstring for the design."""

    def __init__(
        self,
        url: str,
        *,
        index_prefix: str = "facesearch-",
        engine: str = "lucene",
        aws_region: str | None = None,
        aws_service: str = "es",
        aws_credentials: Any = None,
        number_of_replicas: int | None = None,
        refresh: str = "wait_for",
        refresh_interval: str = "1s",
        hnsw_m: int = 32,
        hnsw_ef_construction: int = 100,
        faiss_ef_search: int = 256,
        ef_search: int | None = 256,
        candidates_factor: int = 4,
        candidates_min: int = 40,
        rescore_margin: float = 1e-3,
        exact_filter_below: int = 20_000,
        size_ttl: float = 30.0,
        timeout: float = 30.0,
        allow_insecure_http: bool = False,
        client: OpenSearch | None = None,
    ) -> None:
        if not _PREFIX_RE.match(index_prefix):
            raise InvalidParameterException(
                f"index_prefix {index_prefix!r} must be lowercase [a-z0-9_.-], start with a letter or digit, "
                "and be at most 100 characters"
            )
        if engine not in ENGINES:
            raise InvalidParameterException(f"engine must be one of {ENGINES}, got {engine!r}")
        if engine == "faiss" and aws_region is None and client is None:
            raise InvalidParameterException(
                "engine 'faiss' needs the plugin's native libraries, which only Amazon OpenSearch Service "
                "ships (the Maven Central plugin lacks them and a faiss write crashes that node); "
                "use engine='lucene' or pass aws_region"
            )
        if aws_service != "es":
            # Serverless ("aoss") vector collections reject custom document ids and the refresh parameter,
            # both of which this store's guarantees rest on.
            raise InvalidParameterException("only Amazon OpenSearch Service domains (aws_service='es') are supported")
        if refresh not in ("wait_for", "true"):
            raise InvalidParameterException("refresh must be 'wait_for' or 'true'")
        if not index_prefix.endswith(("-", "_", ".")):
            index_prefix += "-"  # "facesearch" -> "facesearch-": readable names, no accidental overlap
        self.url = url.rstrip("/")
        self.index_prefix = index_prefix
        self.engine = engine
        self.refresh = refresh
        self.refresh_interval = refresh_interval
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construction = hnsw_ef_construction
        self.faiss_ef_search = faiss_ef_search
        self._timeout = timeout
        if ef_search is not None and ef_search < 1:
            raise InvalidParameterException("ef_search must be a positive integer or None")
        self.ef_search = ef_search
        self.candidates_factor = candidates_factor
        self.candidates_min = candidates_min
        if not 0 <= rescore_margin < 1:
            raise InvalidParameterException("rescore_margin must be in [0, 1)")
        self.rescore_margin = rescore_margin
        self.exact_filter_below = exact_filter_below
        self.size_ttl = size_ttl
        self._sizes: dict[str, tuple[int, float]] = {}

        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidParameterException(f"OpenSearch url must be http(s)://host[:port], got {url!r}")
        loopback = _is_loopback(parts.hostname)
        if parts.scheme == "http" and not loopback and not allow_insecure_http:
            raise InvalidParameterException(
                f"refusing plain HTTP to {parts.hostname}: face descriptors are biometric data; use https "
                "(plain HTTP is for loopback only, or pass allow_insecure_http=True)"
            )
        self.number_of_replicas = number_of_replicas if number_of_replicas is not None else (0 if loopback else 1)
        if client is not None:
            self.client = client
        elif aws_region is not None:
            from opensearchpy import AWSV4SignerAuth, RequestsHttpConnection

            if aws_credentials is None:
                import boto3

                aws_credentials = boto3.Session().get_credentials()
                if aws_credentials is None:
                    raise InvalidParameterException("no AWS credentials found for SigV4 signing")
            if parts.scheme != "https":
                raise InvalidParameterException("SigV4-signed requests must use https")
            self.client = OpenSearch(
                hosts=[self.url],
                http_auth=AWSV4SignerAuth(aws_credentials, aws_region, aws_service),
                use_ssl=True,
                verify_certs=True,
                connection_class=RequestsHttpConnection,
                timeout=timeout,
                http_compress=True,
            )
        else:
            self.client = OpenSearch(hosts=[self.url], timeout=timeout, http_compress=not loopback)

    # -- naming --------------------------------------------------------------------------------------
    def _alias(self, collection_id: str) -> str:
        if not isinstance(collection_id, str) or not collection_id:
            raise InvalidParameterException("collection id must be a non-empty string")
        slug = _SLUG_RE.sub("_", collection_id.lower())[:80]
        digest = hashlib.sha256(collection_id.encode("utf-8")).hexdigest()[:16]
        return f"{self.index_prefix}{slug}-{digest}"

    def _index(self, collection_id: str) -> str:
        return f"{self._alias(collection_id)}-v1"

    @staticmethod
    def _face_doc_id(face_id: str) -> str:
        return f"{_FACE}:{face_id}"

    @staticmethod
    def _user_doc_id(user_id: str) -> str:
        return f"{_USER}:{user_id}"

    # -- mapping -------------------------------------------------------------------------------------
    def _method(self) -> dict[str, Any]:
        return {
            "name": "hnsw",
            "engine": self.engine,
            "space_type": "l2",
            "parameters": {"m": self.hnsw_m, "ef_construction": self.hnsw_ef_construction},
        }

    @staticmethod
    def _meta(record: CollectionRecord) -> dict[str, Any]:
        return {
            "facesearch_schema": SCHEMA_VERSION,
            "collection_id": record.collection_id,
            "created_at": record.created_at.isoformat(),
            "face_model_version": record.face_model_version,
            "threshold_floor": float(record.threshold_floor),
            "review_required": bool(record.review_required),
        }

    @staticmethod
    def _record_from_meta(meta: dict[str, Any]) -> CollectionRecord:
        return CollectionRecord(
            collection_id=meta["collection_id"],
            created_at=datetime.fromisoformat(meta["created_at"]),
            face_model_version=meta["face_model_version"],
            threshold_floor=float(meta["threshold_floor"]),
            review_required=bool(meta["review_required"]),
        )

    def _index_body(self, record: CollectionRecord) -> dict[str, Any]:
        index_settings: dict[str, Any] = {
            "knn": True,
            "number_of_shards": 1,
            "number_of_replicas": self.number_of_replicas,
            "refresh_interval": self.refresh_interval,
        }
        if self.engine == "faiss":
            index_settings["knn.algo_param.ef_search"] = self.faiss_ef_search
        return {
            "settings": {"index": index_settings},
            "mappings": {
                "dynamic": "strict",
                "_meta": self._meta(record),
                "properties": {
                    "doc_type": {"type": "keyword"},
                    "face_id": {"type": "keyword"},
                    "user_id": {"type": "keyword"},
                    "image_id": {"type": "keyword"},
                    "external_image_id": {"type": "keyword"},
                    "source": {"type": "keyword", "index": False, "doc_values": False},
                    "confidence": {"type": "double", "index": False},
                    "indexed_at": {"type": "date"},
                    "created_at": {"type": "date"},
                    "bounding_box": {"type": "object", "enabled": False},
                    "quality": {"type": "object", "enabled": False},
                    "vector": {"type": "knn_vector", "dimension": DIMENSION, "method": self._method()},
                },
            },
            "aliases": {self._alias(record.collection_id): {}},
        }

    # -- documents -----------------------------------------------------------------------------------
    @staticmethod
    def _face_doc(face: FaceRecord, vector: np.ndarray) -> dict[str, Any]:
        return {
            "doc_type": _FACE,
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

    @staticmethod
    def _face_from_source(src: dict[str, Any]) -> FaceRecord:
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

    # -- plumbing ------------------------------------------------------------------------------------
    def _require(self, collection_id: str) -> None:
        if not self.client.indices.exists_alias(name=self._alias(collection_id)):
            raise _not_found(collection_id)

    def _bulk(self, collection_id: str, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run bulk actions (opensearchpy.helpers) in chunks; the last chunk waits for visibility.

        Returns the per-action result items; a missing collection raises ResourceNotFoundException.
        """
        items: list[dict[str, Any]] = []
        chunks = [actions[i : i + _BULK_CHUNK] for i in range(0, len(actions), _BULK_CHUNK)]
        for n, chunk in enumerate(chunks):
            last = n == len(chunks) - 1
            results = helpers.streaming_bulk(
                self.client,
                chunk,
                chunk_size=len(chunk),
                max_chunk_bytes=512 * 1024 * 1024,
                max_retries=0,
                raise_on_error=False,
                raise_on_exception=True,
                yield_ok=True,
                # Earlier chunks need no refresh: one refresh makes everything before it visible.
                refresh=self.refresh if last else "false",
                require_alias="true",
            )
            for _ok, result in results:
                (op, item) = next(iter(result.items()))
                error = item.get("error")
                if isinstance(error, dict) and error.get("type") == "index_not_found_exception":
                    raise _not_found(collection_id)
                items.append({"op": op, **item})
        return items

    def _raise_item_errors(self, items: list[dict[str, Any]], ignore: tuple[int, ...] = ()) -> None:
        failed = [i for i in items if i.get("status", 500) >= 300 and i.get("status") not in ignore]
        if failed:
            first = failed[0]
            raise OpenSearchStoreError(
                f"{len(failed)} of {len(items)} bulk actions failed; first: {first.get('_id')}: {first.get('error')}"
            )

    def _search_all(self, index: str, query: dict[str, Any], sort_field: str) -> Iterator[dict[str, Any]]:
        """Every matching document, in ``sort_field`` order, paging with search_after."""
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {"size": 1000, "query": query, "sort": [{sort_field: "asc"}]}
            if after is not None:
                body["search_after"] = after
            hits = self.client.search(index=index, body=body)["hits"]["hits"]
            yield from hits
            if len(hits) < 1000:
                return
            after = hits[-1]["sort"]

    # -- collections ---------------------------------------------------------------------------------
    def create_collection(self, record: CollectionRecord) -> None:
        try:
            self.client.indices.create(index=self._index(record.collection_id), body=self._index_body(record))
        except RequestError as exc:
            if _error_type(exc) == "resource_already_exists_exception":
                raise ResourceAlreadyExistsException(
                    f"The collection id: {record.collection_id} already exists"
                ) from None
            raise

    def get_collection(self, collection_id: str) -> CollectionRecord:
        try:
            mappings = self.client.indices.get_mapping(index=self._index(collection_id))
        except NotFoundError:
            raise _not_found(collection_id) from None
        meta = next(iter(mappings.values()))["mappings"].get("_meta") or {}
        return self._record_from_meta(meta)

    def update_collection(self, record: CollectionRecord) -> None:
        try:
            # _meta is replaced as a whole, never merged.
            self.client.indices.put_mapping(index=self._index(record.collection_id), body={"_meta": self._meta(record)})
        except NotFoundError:
            raise _not_found(record.collection_id) from None

    def list_collections(self) -> list[CollectionRecord]:
        try:
            mappings = self.client.indices.get_mapping(index=f"{self.index_prefix}*", expand_wildcards="open")
        except NotFoundError:
            return []
        records: list[CollectionRecord] = []
        for index, body in mappings.items():
            meta = body.get("mappings", {}).get("_meta") or {}
            cid = meta.get("collection_id")
            # Only our own indices: a longer prefix sharing ours, or a foreign index, does not count.
            if isinstance(cid, str) and meta.get("facesearch_schema") and index == self._index(cid):
                records.append(self._record_from_meta(meta))
        return sorted(records, key=lambda r: r.collection_id)

    def delete_collection(self, collection_id: str) -> None:
        self._sizes.pop(collection_id, None)
        try:
            self.client.indices.delete(index=self._index(collection_id))
        except NotFoundError:
            raise _not_found(collection_id) from None

    # -- faces ---------------------------------------------------------------------------------------
    def add_faces(self, collection_id: str, faces: Sequence[FaceRecord]) -> None:
        alias = self._alias(collection_id)
        if not faces:
            self._require(collection_id)
            return
        ids = [f.face_id for f in faces]
        if len(set(ids)) != len(ids):
            raise InvalidParameterException("duplicate face ids in one add_faces call")
        actions = [
            {
                "_op_type": "create",  # never overwrite an existing face (and its user association)
                "_index": alias,
                "_id": self._face_doc_id(f.face_id),
                "_source": self._face_doc(f, _vector(f.vector)),
            }
            for f in faces
        ]
        items = self._bulk(collection_id, actions)
        self._resized(collection_id, sum(1 for i in items if i.get("status") in (200, 201)))
        if any(i.get("status") == 409 for i in items):
            raise InvalidParameterException("a face id already exists in this collection")
        self._raise_item_errors(items)

    def bulk_load(
        self,
        collection_id: str,
        faces: Iterable[FaceRecord],
        *,
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
        alias = self._alias(collection_id)
        self._require(collection_id)
        index = self._index(collection_id)
        seen: set[str] = set()

        def actions() -> Iterator[dict[str, Any]]:
            for f in faces:
                if f.face_id in seen:
                    raise InvalidParameterException("duplicate face ids in one bulk_load call")
                seen.add(f.face_id)
                yield {
                    "_op_type": "create",
                    "_index": alias,
                    "_id": self._face_doc_id(f.face_id),
                    "_source": self._face_doc(f, _vector(f.vector)),
                }

        timings: dict[str, float] = {}
        began = time.perf_counter()
        loading = {"refresh_interval": "-1", "translog.flush_threshold_size": flush_threshold}
        self.client.indices.put_settings(index=index, body={"index": loading})
        try:
            results = helpers.parallel_bulk(
                self.client,
                actions(),
                thread_count=max(1, threads),
                chunk_size=chunk_size,
                max_chunk_bytes=512 * 1024 * 1024,
                raise_on_error=False,
                raise_on_exception=True,
                require_alias="true",
                request_timeout=max(self._timeout, 300.0),
            )
            for ok, result in results:
                if ok:
                    continue
                (_op, item) = next(iter(result.items()))
                error = item.get("error")
                if isinstance(error, dict) and error.get("type") == "index_not_found_exception":
                    raise _not_found(collection_id)
                if item.get("status") == 409:
                    raise InvalidParameterException("a face id already exists in this collection")
                raise OpenSearchStoreError(f"bulk load failed at {item.get('_id')}: {error}")
        finally:
            restored = {"refresh_interval": self.refresh_interval, "translog.flush_threshold_size": None}
            self.client.indices.put_settings(index=index, body={"index": restored})
        self._sizes.pop(collection_id, None)
        timings["bulk_s"] = time.perf_counter() - began
        t = time.perf_counter()
        self.client.indices.refresh(index=index, request_timeout=max(self._timeout, 600.0))
        timings["refresh_s"] = time.perf_counter() - t
        if max_segments is not None:
            t = time.perf_counter()
            self.optimize(collection_id, max_segments=max_segments)
            timings["merge_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - began
        return timings

    def optimize(self, collection_id: str, *, max_segments: int = 1, timeout: float = 3600.0) -> None:
        """Force-merge the collection's index to at most ``max_segments`` segments (after a large load, when
        writes are quiet: merging rebuilds HNSW graphs and takes minutes per million faces)."""
        index = self._index(collection_id)
        try:
            self.client.indices.forcemerge(index=index, max_num_segments=max_segments, request_timeout=timeout)
            self.client.indices.refresh(index=index, request_timeout=max(self._timeout, 600.0))
        except NotFoundError:
            raise _not_found(collection_id) from None

    def purge_deleted(self, collection_id: str, *, timeout: float = 300.0) -> dict[str, Any]:
        """Expunge deleted faces from the collection's segment files. A Lucene delete only marks a document;
        its vector and ``_source`` stay in the segment until a merge rewrites it, and a soft-deleted document
        is kept while a retention lease (peer recovery; synced every 30 s by default) still covers its
        operation. So: flush (persists the checkpoint and rolls the translog), wait until every lease has
        moved past the last operation, then ``_forcemerge?only_expunge_deletes=true``. What may remain are
        delete tombstones (an id and a sequence number, no face data). Rewrites every segment with deletions,
        so run it when writes are quiet (the CLI: ``facesearch faces purge``)."""
        index = self._index(collection_id)
        began = time.perf_counter()
        try:
            self.client.indices.flush(index=index, params={"wait_if_ongoing": "true"})
            last_op = max(self._shard_seq_nos(index))
            while min(self._lease_seq_nos(index)) <= last_op:
                if time.perf_counter() - began > timeout:
                    raise InvalidParameterException(
                        f"purge of {collection_id}: retention leases still cover deleted documents after {timeout} s"
                    )
                time.sleep(1.0)
            waited = time.perf_counter() - began
            # By default a segment is only rewritten if more than 10 % of it is deleted; one face must be enough.
            self.client.indices.put_settings(index=index, body={"index.merge.policy.expunge_deletes_allowed": 0})
            self.client.indices.forcemerge(
                index=index, params={"only_expunge_deletes": "true"}, request_timeout=max(timeout, 60.0)
            )
            self.client.indices.refresh(index=index)
        except NotFoundError:
            raise _not_found(collection_id) from None
        return {"backend": "opensearch", "purged": True, "lease_wait_s": round(waited, 1)} | self.segment_stats(
            collection_id
        )

    def _shard_stats(self, index: str) -> list[dict[str, Any]]:
        stats = self.client.indices.stats(index=index, level="shards", metric="docs")
        return [copy for shard in next(iter(stats["indices"].values()))["shards"].values() for copy in shard]

    def _shard_seq_nos(self, index: str) -> list[int]:
        return [int(s["seq_no"]["max_seq_no"]) for s in self._shard_stats(index)]

    def _lease_seq_nos(self, index: str) -> list[int]:
        """The lowest sequence number each shard copy's retention leases still keep soft-deleted docs for."""
        out = []
        for shard in self._shard_stats(index):
            leases = (shard.get("retention_leases") or {}).get("leases") or []
            out.append(min((int(lease["retaining_seq_no"]) for lease in leases), default=2**63 - 1))
        return out

    def segment_stats(self, collection_id: str) -> dict[str, int]:
        """Segment count and on-disk size of the collection's index (for benchmarks and health)."""
        try:
            stats = self.client.indices.stats(index=self._index(collection_id), metric="segments,store,docs")
        except NotFoundError:
            raise _not_found(collection_id) from None
        total = next(iter(stats["indices"].values()))["primaries"]
        return {
            "segments": int(total["segments"]["count"]),
            "store_bytes": int(total["store"]["size_in_bytes"]),
            "docs": int(total["docs"]["count"]),
            "deleted_docs": int(total["docs"]["deleted"]),
        }

    def get_faces(self, collection_id: str, face_ids: Iterable[str]) -> dict[str, FaceRecord]:
        ids = list(dict.fromkeys(face_ids))
        if not ids:
            self._require(collection_id)
            return {}
        out: dict[str, FaceRecord] = {}
        for i in range(0, len(ids), 1000):
            found = self._mget_faces(collection_id, [self._face_doc_id(x) for x in ids[i : i + 1000]])
            out.update((face.face_id, face) for face in found if face is not None)
        return out

    def list_faces(
        self,
        collection_id: str,
        *,
        after: str | None = None,
        limit: int = 1000,
        user_id: str | None = None,
    ) -> list[FaceRecord]:
        extra = [{"term": {"user_id": user_id}}] if user_id is not None else []
        sources = self._page(collection_id, _FACE, "face_id", after, limit, extra)
        return [self._face_from_source(s) for s in sources]

    def _page(
        self,
        collection_id: str,
        doc_type: str,
        key: str,
        after: str | None,
        limit: int,
        extra_filters: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """One page of ``doc_type`` documents ordered by ``key``, strictly after ``after``."""
        if limit < 1:
            raise InvalidParameterException("limit must be at least 1")
        filters: list[dict[str, Any]] = [{"term": {"doc_type": doc_type}}, *(extra_filters or [])]
        if after is not None:
            filters.append({"range": {key: {"gt": after}}})
        try:
            hits = self.client.search(
                index=self._alias(collection_id),
                body={"size": min(limit, MAX_K), "query": {"bool": {"filter": filters}}, "sort": [{key: "asc"}]},
            )["hits"]["hits"]
        except NotFoundError:
            raise _not_found(collection_id) from None
        return [h["_source"] for h in hits]

    def delete_faces(self, collection_id: str, face_ids: Iterable[str]) -> list[str]:
        ids = list(dict.fromkeys(face_ids))
        if not ids:
            self._require(collection_id)
            return []
        alias = self._alias(collection_id)
        actions = [{"_op_type": "delete", "_index": alias, "_id": self._face_doc_id(x)} for x in ids]
        items = self._bulk(collection_id, actions)
        self._raise_item_errors(items, ignore=(404,))
        prefix = f"{_FACE}:"
        deleted = [i["_id"][len(prefix) :] for i in items if i.get("result") == "deleted"]
        self._resized(collection_id, -len(deleted))
        return deleted

    def count_faces(self, collection_id: str) -> int:
        try:
            return int(
                self.client.count(index=self._alias(collection_id), body={"query": {"term": {"doc_type": _FACE}}})[
                    "count"
                ]
            )
        except NotFoundError:
            raise _not_found(collection_id) from None

    def search(
        self,
        collection_id: str,
        vector: np.ndarray,
        *,
        k: int,
        max_distance: float | None = None,
    ) -> list[Neighbor]:
        if k < 1:
            raise InvalidParameterException("k must be at least 1")
        if k > MAX_K:
            raise InvalidParameterException(f"k must be at most {MAX_K}")
        if max_distance is not None and not max_distance >= 0:
            raise InvalidParameterException("max_distance must be a non-negative number")
        query = _vector(vector)
        q64 = query.astype(np.float64)
        limit = math.inf if max_distance is None else float(max_distance)
        count = min(MAX_K, max(k * self.candidates_factor, self.candidates_min))
        for widening in range(3):
            hits = self._knn(collection_id, query, count)
            if not hits:
                return []
            # Phase 2: only candidates whose engine distance could put them in the result are fetched (their
            # JSON vectors are most of a search's cost) and re-scored exactly from the stored float32 vectors.
            approx = [self._score_to_distance(float(h["_score"])) for h in hits]
            wanted = [i for i, a in enumerate(approx) if a <= limit + self._margin(limit)]
            if len(wanted) > k:
                kth = approx[wanted[k - 1]]
                wanted = [i for i in wanted if approx[i] <= kth + self._margin(kth)]
            fetched = self._mget_faces(collection_id, [hits[i]["_id"] for i in wanted])
            if None in fetched:
                continue  # a candidate was deleted between the two requests: search again
            faces = [f for f in fetched if f is not None]
            vecs = np.asarray([f.vector for f in faces], dtype=np.float32).astype(np.float64).reshape(-1, DIMENSION)
            diff = vecs - q64
            dists = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            ranked = sorted((float(d), f.face_id, i) for i, (f, d) in enumerate(zip(faces, dists, strict=True)))
            ranked = [r for r in ranked if r[0] <= limit]
            complete = len(hits) < count or count >= MAX_K or widening == 2
            if not complete:
                # Complete when the k-th exact distance (or the threshold) is clearly inside the farthest
                # candidate: anything not returned is at least that far away.
                needed = ranked[k - 1][0] if len(ranked) >= k else limit
                farthest = approx[-1]
                complete = needed < farthest - 1e-4 * (1.0 + farthest)
            if complete:
                return [Neighbor(faces[i], d) for d, _, i in ranked[:k]]
            count = min(MAX_K, count * 4)
        raise OpenSearchStoreError("search candidates kept changing under concurrent deletes; try again")

    def _margin(self, distance: float) -> float:
        """How far the engine's own distance may be from the exact one: float32 arithmetic and the score
        transform are ~1e-6 relative; ``rescore_margin`` (default 1e-3) leaves room for quantising encoders."""
        return 0.0 if math.isinf(distance) else self.rescore_margin * (1.0 + distance)

    def _mget_faces(self, collection_id: str, doc_ids: list[str]) -> list[FaceRecord | None]:
        """The faces behind ``doc_ids`` in order (one mget); None where a document does not exist."""
        if not doc_ids:
            return []
        try:
            docs = self.client.mget(index=self._alias(collection_id), body={"ids": doc_ids})["docs"]
        except NotFoundError:
            raise _not_found(collection_id) from None
        faces: list[FaceRecord | None] = []
        for doc in docs:
            error = doc.get("error")
            if error:
                if isinstance(error, dict) and error.get("type") == "index_not_found_exception":
                    raise _not_found(collection_id)
                raise OpenSearchStoreError(f"mget failed: {error}")
            faces.append(self._face_from_source(doc["_source"]) if doc.get("found") else None)
        return faces

    def _score_to_distance(self, score: float) -> float:
        # Both engines score l2 as 1 / (1 + squared euclidean distance).
        if score <= 0:
            return math.inf
        return math.sqrt(max(1.0 / score - 1.0, 0.0))

    def _small(self, collection_id: str) -> bool:
        """Whether the collection has at most ``exact_filter_below`` faces (count cached for ``size_ttl`` s,
        adjusted by this store's own writes)."""
        cached = self._sizes.get(collection_id)
        now = time.monotonic()
        if cached is None or now - cached[1] > self.size_ttl:
            cached = (self.count_faces(collection_id), now)
            self._sizes[collection_id] = cached
        return cached[0] <= self.exact_filter_below

    def _resized(self, collection_id: str, delta: int) -> None:
        cached = self._sizes.get(collection_id)
        if cached is not None:
            self._sizes[collection_id] = (max(0, cached[0] + delta), cached[1])

    def _knn(self, collection_id: str, query: np.ndarray, count: int) -> list[dict[str, Any]]:
        knn: dict[str, Any] = {"vector": query.tolist(), "k": count}
        if self._small(collection_id):
            # Matches every vector of the index (users have none): no recall cost, and Lucene then scans a
            # segment exactly when it has no more faces than ``count``. Its bitset costs O(faces) per
            # query (~2.5 ms per 100k faces), so large collections go without it.
            knn["filter"] = {"term": {"doc_type": _FACE}}
        body: dict[str, Any] = {"size": count, "_source": False, "query": {"knn": {"vector": knn}}}
        if self.engine == "lucene" and self.ef_search is not None and self.ef_search > count:
            # Lucene explores max(k, ef_search) per segment; ``size`` keeps the response to the ``count``
            # best of them (ids and scores; their documents are fetched only if they can make the result).
            body["query"]["knn"]["vector"]["method_parameters"] = {"ef_search": self.ef_search}
        try:
            return list(self.client.search(index=self._alias(collection_id), body=body)["hits"]["hits"])
        except NotFoundError:
            raise _not_found(collection_id) from None

    # -- users ---------------------------------------------------------------------------------------
    def create_user(self, collection_id: str, user: UserRecord) -> None:
        doc = {"doc_type": _USER, "user_id": user.user_id, "created_at": user.created_at.isoformat()}
        try:
            self.client.index(
                index=self._alias(collection_id),
                id=self._user_doc_id(user.user_id),
                body=doc,
                op_type="create",
                require_alias="true",
                refresh=self.refresh,
            )
        except ConflictError:
            raise ResourceAlreadyExistsException(f"The user id: {user.user_id} already exists") from None
        except NotFoundError:
            raise _not_found(collection_id) from None

    def _active_users(self, collection_id: str, user_ids: Sequence[str]) -> set[str]:
        if not user_ids:
            return set()
        body = {
            "size": 0,
            "query": {"bool": {"filter": [{"term": {"doc_type": _FACE}}, {"terms": {"user_id": list(user_ids)}}]}},
            "aggs": {"users": {"terms": {"field": "user_id", "size": len(user_ids)}}},
        }
        try:
            result = self.client.search(index=self._alias(collection_id), body=body)
        except NotFoundError:
            raise _not_found(collection_id) from None
        return {b["key"] for b in result["aggregations"]["users"]["buckets"] if b["doc_count"] > 0}

    @staticmethod
    def _user_from_source(src: dict[str, Any], active: bool) -> UserRecord:
        return UserRecord(
            user_id=src["user_id"],
            created_at=datetime.fromisoformat(src["created_at"]),
            status="ACTIVE" if active else "CREATED",
        )

    def _get_user_source(self, collection_id: str, user_id: str) -> dict[str, Any] | None:
        try:
            doc = self.client.get(index=self._alias(collection_id), id=self._user_doc_id(user_id))
        except NotFoundError as exc:
            if _error_type(exc) == "index_not_found_exception":
                raise _not_found(collection_id) from None
            return None
        return dict(doc["_source"])

    def get_user(self, collection_id: str, user_id: str) -> UserRecord | None:
        src = self._get_user_source(collection_id, user_id)
        if src is None:
            return None
        return self._user_from_source(src, user_id in self._active_users(collection_id, [user_id]))

    def list_users(self, collection_id: str, *, after: str | None = None, limit: int = 1000) -> list[UserRecord]:
        sources = self._page(collection_id, _USER, "user_id", after, limit)
        active = self._active_users(collection_id, [s["user_id"] for s in sources])
        return [self._user_from_source(s, s["user_id"] in active) for s in sources]

    def delete_user(self, collection_id: str, user_id: str) -> None:
        alias = self._alias(collection_id)
        try:
            self.client.delete(index=alias, id=self._user_doc_id(user_id), refresh=self.refresh)
        except NotFoundError as exc:
            if _error_type(exc) == "index_not_found_exception":
                raise _not_found(collection_id) from None
            raise ResourceNotFoundException(f"The user id: {user_id} does not exist") from None
        # Clear the association on its faces (the faces stay indexed). Bulk partial updates rather than
        # update_by_query: that needs a painless script, which the local integ-test distribution lacks.
        query = {"bool": {"filter": [{"term": {"doc_type": _FACE}}, {"term": {"user_id": user_id}}]}}
        face_ids = [h["_source"]["face_id"] for h in self._search_all(alias, query, "face_id")]
        if face_ids:
            self._set_user_field(collection_id, face_ids, None)

    def count_users(self, collection_id: str) -> int:
        try:
            return int(
                self.client.count(index=self._alias(collection_id), body={"query": {"term": {"doc_type": _USER}}})[
                    "count"
                ]
            )
        except NotFoundError:
            raise _not_found(collection_id) from None

    def set_face_user(self, collection_id: str, face_ids: Iterable[str], user_id: str | None) -> None:
        ids = list(dict.fromkeys(face_ids))
        if user_id is not None and self._get_user_source(collection_id, user_id) is None:
            raise ResourceNotFoundException(f"The user id: {user_id} does not exist")
        if not ids:
            self._require(collection_id)
            return
        self._set_user_field(collection_id, ids, user_id)

    def _set_user_field(self, collection_id: str, face_ids: list[str], user_id: str | None) -> None:
        alias = self._alias(collection_id)
        actions = [
            {"_op_type": "update", "_index": alias, "_id": self._face_doc_id(x), "doc": {"user_id": user_id}}
            for x in face_ids
        ]
        items = self._bulk(collection_id, actions)
        self._raise_item_errors(items, ignore=(404,))  # unknown face ids are ignored

    # -- lifecycle -----------------------------------------------------------------------------------
    def close(self) -> None:
        self.client.close()
