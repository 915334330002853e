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
readable lowercase slug plus a hash of the exact id; the real id is in ``_meta`` (mapping.py).

Endpoints. ``url`` may carry a path prefix (LocalStack serves a domain at
``http://127.0.0.1:4566/opensearch/<region>/<domain>``); authentication is injected as ``http_auth`` (e.g. a
SigV4 signer built by facesearch/aws/) with an optional ``connection_class`` (client.py).

Vectors. ``knn_vector`` of dimension 128, HNSW, ``space_type: l2`` (our distance is euclidean). The
engine is always named in the mapping: ``lucene`` by default — the only one the Maven Central k-NN plugin
can run (its zip has no native faiss/nmslib libraries, and writing to a faiss field kills that node) —
and ``faiss`` is accepted only against a managed domain (``aws_region`` or ``http_auth`` given), whose
plugin has them.

Exact distances (the search template of store/base.py; this store supplies the candidates). The k-NN
query returns candidates ranked by the engine's float32 score; the vectors come back in ``_source`` (their
JSON floats are the float32 values exactly, so they round-trip bit for bit), are re-scored in float64 with
numpy, ``max_distance`` is applied to that exact distance, and hits are sorted
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
writers until it ends. Merging rebuilds graphs: minutes per million faces on two cores. (maintenance.py, with purging
and force merges.)

User status (CREATED/ACTIVE) is derived on read from whether any face carries the user id, so it can
never drift from the faces. Documents and their request patterns: documents.py.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConflictError, NotFoundError, RequestError

from facesearch.errors import (
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from facesearch.store.base import Candidates, VectorStore, checked_vector
from facesearch.store.opensearch import documents as docs
from facesearch.store.opensearch import maintenance
from facesearch.store.opensearch.client import open_client, parse_endpoint
from facesearch.store.opensearch.documents import MAX_K, error_type, not_found
from facesearch.store.opensearch.mapping import (
    ENGINES,
    FACE,
    USER,
    IndexLayout,
    checked_prefix,
    collection_meta,
    face_doc_id,
    record_from_meta,
    user_doc_id,
)
from facesearch.store.records import CollectionRecord, FaceRecord, UserRecord


class _SearchScope:
    """One search: its collection, and the faces fetched to re-score candidates (by document id)."""

    __slots__ = ("collection_id", "faces")

    def __init__(self, collection_id: str) -> None:
        self.collection_id = collection_id
        self.faces: dict[str, FaceRecord] = {}


class OpenSearchStore(VectorStore):
    """VectorStore on OpenSearch with the k-NN plugin. See the module docstring for the design.

    Authentication: ``http_auth`` (and ``connection_class``) are passed to opensearch-py as they are — for
    Amazon OpenSearch Service a SigV4 signer, e.g. ``AWSV4SignerAuth(credentials, region, "es")`` with
    ``RequestsHttpConnection``. ``aws_region`` + ``aws_credentials`` build that signer here (the caller still
    finds the credentials: this store imports no AWS SDK).
    """

    max_k = MAX_K
    max_search_rounds = 3  # candidates vanishing under concurrent deletes: give up after three rounds

    def __init__(
        self,
        url: str,
        *,
        index_prefix: str = "facesearch-",
        engine: str = "lucene",
        http_auth: Any = None,
        connection_class: Any = None,
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
        index_prefix = checked_prefix(index_prefix)
        if engine not in ENGINES:
            raise InvalidParameterException(f"engine must be one of {ENGINES}, got {engine!r}")
        if engine == "faiss" and aws_region is None and http_auth is None and client is None:
            raise InvalidParameterException(
                "engine 'faiss' needs the plugin's native libraries, which only Amazon OpenSearch Service "
                "ships (the Maven Central plugin lacks them and a faiss write crashes that node); "
                "use engine='lucene', or pass aws_region or http_auth for a managed domain"
            )
        if aws_service != "es":
            # Serverless ("aoss") vector collections reject custom document ids and the refresh parameter,
            # both of which this store's guarantees rest on.
            raise InvalidParameterException("only Amazon OpenSearch Service domains (aws_service='es') are supported")
        if aws_region is not None and http_auth is not None:
            raise InvalidParameterException("pass either http_auth or aws_region (+ aws_credentials), not both")
        if refresh not in ("wait_for", "true"):
            raise InvalidParameterException("refresh must be 'wait_for' or 'true'")
        if ef_search is not None and ef_search < 1:
            raise InvalidParameterException("ef_search must be a positive integer or None")
        if not 0 <= rescore_margin < 1:
            raise InvalidParameterException("rescore_margin must be in [0, 1)")
        endpoint = parse_endpoint(url)
        self.url = endpoint.url
        self.endpoint = endpoint
        self.index_prefix = index_prefix
        self.engine = engine
        self.refresh = refresh
        self.refresh_interval = refresh_interval
        self.number_of_replicas = (
            number_of_replicas if number_of_replicas is not None else (0 if endpoint.loopback else 1)
        )
        self.layout = IndexLayout(
            prefix=index_prefix,
            engine=engine,
            number_of_replicas=self.number_of_replicas,
            refresh_interval=refresh_interval,
            hnsw_m=hnsw_m,
            hnsw_ef_construction=hnsw_ef_construction,
            faiss_ef_search=faiss_ef_search,
        )
        self._timeout = timeout
        self.ef_search = ef_search
        self.candidates_factor = candidates_factor
        self.candidates_min = candidates_min
        self.rescore_margin = rescore_margin
        self.exact_filter_below = exact_filter_below
        self.size_ttl = size_ttl
        self._sizes: dict[str, tuple[int, float]] = {}

        signed = False
        if aws_region is not None:
            from opensearchpy import AWSV4SignerAuth, RequestsHttpConnection

            if aws_credentials is None:
                raise InvalidParameterException(
                    "aws_region needs aws_credentials (e.g. boto3.Session().get_credentials()) to sign requests"
                )
            http_auth = AWSV4SignerAuth(aws_credentials, aws_region, aws_service)
            connection_class = connection_class or RequestsHttpConnection
            signed = True
        elif http_auth is not None:
            signed = not isinstance(http_auth, tuple | list | str)  # a signer, not basic auth
        if client is not None:
            self.client = client
        else:
            self.client = open_client(
                endpoint,
                timeout=timeout,
                allow_insecure_http=allow_insecure_http,
                http_auth=http_auth,
                connection_class=connection_class,
                signed=signed,
            )

    # -- naming (mapping.py) ---------------------------------------------------------------------------
    def _alias(self, collection_id: str) -> str:
        return self.layout.alias(collection_id)

    def _index(self, collection_id: str) -> str:
        return self.layout.index(collection_id)

    def _index_body(self, record: CollectionRecord) -> dict[str, Any]:
        return self.layout.index_body(record)

    def _require(self, collection_id: str) -> None:
        if not self.client.indices.exists_alias(name=self._alias(collection_id)):
            raise not_found(collection_id)

    def _bulk(self, collection_id: str, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return docs.bulk(self.client, collection_id, actions, self.refresh)

    # -- collections ---------------------------------------------------------------------------------
    def create_collection(self, record: CollectionRecord) -> None:
        try:
            self.client.indices.create(index=self._index(record.collection_id), body=self._index_body(record))
        except RequestError as exc:
            if error_type(exc) == "resource_already_exists_exception":
                raise ResourceAlreadyExistsException(
                    f"The collection id: {record.collection_id} already exists"
                ) from None
            raise

    def get_collection(self, collection_id: str) -> CollectionRecord:
        try:
            mappings = self.client.indices.get_mapping(index=self._index(collection_id))
        except NotFoundError:
            raise not_found(collection_id) from None
        meta = next(iter(mappings.values()))["mappings"].get("_meta") or {}
        return record_from_meta(meta)

    def update_collection(self, record: CollectionRecord) -> None:
        try:
            # _meta is replaced as a whole, never merged.
            self.client.indices.put_mapping(
                index=self._index(record.collection_id), body={"_meta": collection_meta(record)}
            )
        except NotFoundError:
            raise not_found(record.collection_id) from None

    def list_collections(self) -> list[CollectionRecord]:
        try:
            mappings = self.client.indices.get_mapping(index=f"{self.index_prefix}*", expand_wildcards="open")
        except NotFoundError:
            return []
        records: list[CollectionRecord] = []
        for index, body in mappings.items():
            meta = body.get("mappings", {}).get("_meta") or {}
            # Only our own indices: a longer prefix sharing ours, or a foreign index, does not count.
            if self.layout.owns(index, meta):
                records.append(record_from_meta(meta))
        return sorted(records, key=lambda r: r.collection_id)

    def delete_collection(self, collection_id: str) -> None:
        self._sizes.pop(collection_id, None)
        try:
            self.client.indices.delete(index=self._index(collection_id))
        except NotFoundError:
            raise not_found(collection_id) from None

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
                "_id": face_doc_id(f.face_id),
                "_source": docs.face_doc(f, checked_vector(f.vector)),
            }
            for f in faces
        ]
        items = self._bulk(collection_id, actions)
        self._resized(collection_id, sum(1 for i in items if i.get("status") in (200, 201)))
        if any(i.get("status") == 409 for i in items):
            raise InvalidParameterException("a face id already exists in this collection")
        docs.raise_item_errors(items)

    def get_faces(self, collection_id: str, face_ids: Iterable[str]) -> dict[str, FaceRecord]:
        ids = list(dict.fromkeys(face_ids))
        if not ids:
            self._require(collection_id)
            return {}
        alias = self._alias(collection_id)
        out: dict[str, FaceRecord] = {}
        for i in range(0, len(ids), 1000):
            found = docs.mget_faces(self.client, alias, collection_id, [face_doc_id(x) for x in ids[i : i + 1000]])
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
        sources = docs.page(
            self.client, self._alias(collection_id), collection_id, FACE, "face_id", after, limit, extra
        )
        return [docs.face_from_source(s) for s in sources]

    def delete_faces(self, collection_id: str, face_ids: Iterable[str]) -> list[str]:
        ids = list(dict.fromkeys(face_ids))
        if not ids:
            self._require(collection_id)
            return []
        alias = self._alias(collection_id)
        actions = [{"_op_type": "delete", "_index": alias, "_id": face_doc_id(x)} for x in ids]
        items = self._bulk(collection_id, actions)
        docs.raise_item_errors(items, ignore=(404,))
        prefix = f"{FACE}:"
        deleted = [i["_id"][len(prefix) :] for i in items if i.get("result") == "deleted"]
        self._resized(collection_id, -len(deleted))
        return deleted

    def count_faces(self, collection_id: str) -> int:
        return docs.count(self.client, self._alias(collection_id), collection_id, FACE)

    # -- maintenance (maintenance.py) ------------------------------------------------------------------
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
        """Load many faces at once (initial import, re-index); durable and searchable on return, like
        add_faces, without a refresh per request. See ``maintenance.bulk_load``. Returns timings in seconds."""
        self._require(collection_id)
        try:
            return maintenance.bulk_load(
                self.client,
                alias=self._alias(collection_id),
                index=self._index(collection_id),
                collection_id=collection_id,
                faces=faces,
                refresh_interval=self.refresh_interval,
                timeout=self._timeout,
                chunk_size=chunk_size,
                threads=threads,
                max_segments=max_segments,
                flush_threshold=flush_threshold,
            )
        finally:
            self._sizes.pop(collection_id, None)

    def optimize(self, collection_id: str, *, max_segments: int = 1, timeout: float = 3600.0) -> None:
        """Force-merge the collection's index to at most ``max_segments`` segments (after a large load)."""
        maintenance.optimize(
            self.client,
            index=self._index(collection_id),
            collection_id=collection_id,
            max_segments=max_segments,
            timeout=timeout,
            refresh_timeout=self._timeout,
        )

    def purge_deleted(self, collection_id: str, *, timeout: float = 300.0) -> dict[str, Any]:
        """Expunge deleted faces from the collection's segment files; see ``maintenance.purge_deleted``."""
        return maintenance.purge_deleted(
            self.client, index=self._index(collection_id), collection_id=collection_id, timeout=timeout
        )

    def segment_stats(self, collection_id: str) -> dict[str, int]:
        """Segment count and on-disk size of the collection's index (for benchmarks and health)."""
        return maintenance.segment_stats(self.client, index=self._index(collection_id), collection_id=collection_id)

    # -- search: the candidate methods of base.VectorStore.search --------------------------------------
    @contextlib.contextmanager
    def _search_scope(self, collection_id: str) -> Iterator[_SearchScope]:
        self._alias(collection_id)  # a malformed id fails before any request
        yield _SearchScope(collection_id)

    def _candidates(self, scope: _SearchScope, query: np.ndarray, count: int, k: int, limit: float) -> Candidates:
        hits = self._knn(scope.collection_id, query, count)
        keys = np.empty(len(hits), dtype=object)
        keys[:] = [h["_id"] for h in hits]
        approx = np.asarray([self._score_to_distance(float(h["_score"])) for h in hits], dtype=np.float64)
        return Candidates(keys, approx=approx)

    def _worth_scoring(self, found: Candidates, k: int, limit: float) -> np.ndarray:
        """Only candidates whose engine distance could put them in the result are fetched (their JSON vectors
        are most of a search's cost): within the margin of the threshold and of the k-th candidate."""
        approx = found.approx
        assert approx is not None
        wanted = np.flatnonzero(approx <= limit + self._margin(limit))
        if len(wanted) > k:
            kth = float(approx[wanted[k - 1]])
            wanted = wanted[approx[wanted] <= kth + self._margin(kth)]
        return found.keys[wanted]

    def _candidate_vectors(self, scope: _SearchScope, keys: np.ndarray) -> np.ndarray | None:
        fetched = docs.mget_faces(self.client, self._alias(scope.collection_id), scope.collection_id, keys.tolist())
        if any(f is None for f in fetched):
            return None  # deleted between the k-NN query and the mget: the round is repeated
        faces = [f for f in fetched if f is not None]
        scope.faces.update(zip(keys.tolist(), faces, strict=True))
        return np.asarray([f.vector for f in faces], dtype=np.float32).reshape(-1, 128)

    def _hit_faces(self, scope: _SearchScope, keys: np.ndarray) -> dict[Any, FaceRecord]:
        return {key: scope.faces[key] for key in keys.tolist()}

    def _margin(self, distance: float) -> float:
        """How far the engine's own distance may be from the exact one: float32 arithmetic and the score
        transform are ~1e-6 relative; ``rescore_margin`` (default 1e-3) leaves room for quantising encoders."""
        return 0.0 if math.isinf(distance) else self.rescore_margin * (1.0 + distance)

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
            knn["filter"] = {"term": {"doc_type": FACE}}
        body: dict[str, Any] = {"size": count, "_source": False, "query": {"knn": {"vector": knn}}}
        if self.engine == "lucene" and self.ef_search is not None and self.ef_search > count:
            # Lucene explores max(k, ef_search) per segment; ``size`` keeps the response to the ``count``
            # best of them (ids and scores; their documents are fetched only if they can make the result).
            body["query"]["knn"]["vector"]["method_parameters"] = {"ef_search": self.ef_search}
        try:
            return list(self.client.search(index=self._alias(collection_id), body=body)["hits"]["hits"])
        except NotFoundError:
            raise not_found(collection_id) from None

    # -- users ---------------------------------------------------------------------------------------
    def create_user(self, collection_id: str, user: UserRecord) -> None:
        try:
            self.client.index(
                index=self._alias(collection_id),
                id=user_doc_id(user.user_id),
                body=docs.user_doc(user),
                op_type="create",
                require_alias="true",
                refresh=self.refresh,
            )
        except ConflictError:
            raise ResourceAlreadyExistsException(f"The user id: {user.user_id} already exists") from None
        except NotFoundError:
            raise not_found(collection_id) from None

    def _active_users(self, collection_id: str, user_ids: Sequence[str]) -> set[str]:
        if not user_ids:
            return set()
        body = {
            "size": 0,
            "query": {"bool": {"filter": [{"term": {"doc_type": FACE}}, {"terms": {"user_id": list(user_ids)}}]}},
            "aggs": {"users": {"terms": {"field": "user_id", "size": len(user_ids)}}},
        }
        try:
            result = self.client.search(index=self._alias(collection_id), body=body)
        except NotFoundError:
            raise not_found(collection_id) from None
        return {b["key"] for b in result["aggregations"]["users"]["buckets"] if b["doc_count"] > 0}

    def _get_user_source(self, collection_id: str, user_id: str) -> dict[str, Any] | None:
        try:
            doc = self.client.get(index=self._alias(collection_id), id=user_doc_id(user_id))
        except NotFoundError as exc:
            if error_type(exc) == "index_not_found_exception":
                raise not_found(collection_id) from None
            return None
        return dict(doc["_source"])

    def get_user(self, collection_id: str, user_id: str) -> UserRecord | None:
        src = self._get_user_source(collection_id, user_id)
        if src is None:
            return None
        return docs.user_from_source(src, user_id in self._active_users(collection_id, [user_id]))

    def list_users(self, collection_id: str, *, after: str | None = None, limit: int = 1000) -> list[UserRecord]:
        sources = docs.page(self.client, self._alias(collection_id), collection_id, USER, "user_id", after, limit)
        active = self._active_users(collection_id, [s["user_id"] for s in sources])
        return [docs.user_from_source(s, s["user_id"] in active) for s in sources]

    def delete_user(self, collection_id: str, user_id: str) -> None:
        alias = self._alias(collection_id)
        try:
            self.client.delete(index=alias, id=user_doc_id(user_id), refresh=self.refresh)
        except NotFoundError as exc:
            if error_type(exc) == "index_not_found_exception":
                raise not_found(collection_id) from None
            raise ResourceNotFoundException(f"The user id: {user_id} does not exist") from None
        # Clear the association on its faces (the faces stay indexed). Bulk partial updates rather than
        # update_by_query: that needs a painless script, which the local integ-test distribution lacks.
        query = {"bool": {"filter": [{"term": {"doc_type": FACE}}, {"term": {"user_id": user_id}}]}}
        face_ids = [h["_source"]["face_id"] for h in docs.search_all(self.client, alias, query, "face_id")]
        if face_ids:
            self._set_user_field(collection_id, face_ids, None)

    def count_users(self, collection_id: str) -> int:
        return docs.count(self.client, self._alias(collection_id), collection_id, USER)

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
            {"_op_type": "update", "_index": alias, "_id": face_doc_id(x), "doc": {"user_id": user_id}}
            for x in face_ids
        ]
        items = self._bulk(collection_id, actions)
        docs.raise_item_errors(items, ignore=(404,))  # unknown face ids are ignored

    # -- lifecycle -----------------------------------------------------------------------------------
    def close(self) -> None:
        self.client.close()
