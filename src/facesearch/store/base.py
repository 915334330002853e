"""The one vector-store interface both backends implement (embedded and OpenSearch).

Contract (tests/contract/ runs the same suite against every backend):

* Collections are isolated: a search, list or delete in one collection never sees another's faces.
  Both backends keep a separate ANN index per collection (an OpenSearch index per collection, a faiss
  index file per collection), so a search needs no filter (no recall loss from filtered k-NN) and deleting a
  collection drops its vectors for good — deletion of biometric data must be complete and cheap.
* ``add_faces`` is durable and searchable when it returns (the caller acknowledges IndexFaces after it).
* ``search`` returns at most ``k`` hits ordered by ascending *exact* euclidean distance; candidates from
  the ANN index are re-scored with the true distance before ``max_distance`` is applied, so thresholds are
  exact. Ties are broken by face_id for determinism.
* Listing is ordered by face_id (users by user_id) and paginated with ``after`` (exclusive) + ``limit``.
* Unknown collection → ResourceNotFoundException; creating an existing one → ResourceAlreadyExistsException.
  Unknown face ids are ignored by get/delete (the service decides what to report).

Search is one template here (``VectorStore.search``): argument checks, exact float64 re-scoring, the
completeness rule and the (distance, face_id) order are the same for every backend, which supplies only how
to find candidates, how to read their stored vectors and how to load the winning faces (``_search_scope``,
``_candidates``, ``_candidate_vectors``, ``_hit_faces``).
"""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from facesearch.errors import FaceSearchError, InvalidParameterException
from facesearch.store.records import DIMENSION, CollectionRecord, FaceRecord, Neighbor, UserRecord

WIDEN = 4  # a search that cannot prove its candidates complete asks for this many times more
_NO_KEYS = np.empty(0, np.uint64)
_NO_DISTANCES = np.empty(0, np.float64)


class SearchCandidatesChanged(FaceSearchError):
    """A search's candidates kept disappearing (concurrent deletes) on every round it was allowed."""


def checked_vector(vector: Any) -> np.ndarray:
    """A descriptor as contiguous little-endian float32 of shape (128,), or InvalidParameterException."""
    v = np.asarray(vector)
    if v.shape != (DIMENSION,):
        raise InvalidParameterException(f"face vector must have shape ({DIMENSION},), got {v.shape}")
    v = np.ascontiguousarray(v, dtype="<f4")
    if not np.isfinite(v).all():
        raise InvalidParameterException("face vector must be finite")
    return v


@dataclass(frozen=True)
class Candidates:
    """One round of a backend's candidates for a query.

    ``keys`` are the backend's handles (faces.seq, document ids). ``approx`` is the engine's own distance of
    each, ascending (float32 arithmetic, or a distance derived from a score); None when the engine gave none.
    ``final``: asking for more would find nothing the recall of the backend's index does not already decide
    (an exhaustive scan, or an ANN answer the backend trusts), so the completeness rule is not applied.
    """

    keys: np.ndarray
    approx: np.ndarray | None = None
    final: bool = False


class VectorStore(ABC):
    """Persistence for collections, faces (with descriptors) and users."""

    # -- collections -------------------------------------------------------------------------------
    @abstractmethod
    def create_collection(self, record: CollectionRecord) -> None: ...

    @abstractmethod
    def get_collection(self, collection_id: str) -> CollectionRecord: ...

    @abstractmethod
    def update_collection(self, record: CollectionRecord) -> None:
        """Replace a collection's settings (e.g. raise its threshold floor)."""

    @abstractmethod
    def list_collections(self) -> list[CollectionRecord]:
        """All collections ordered by id."""

    @abstractmethod
    def delete_collection(self, collection_id: str) -> None:
        """Remove the collection with every face, vector and user in it, irreversibly."""

    # -- faces -------------------------------------------------------------------------------------
    @abstractmethod
    def add_faces(self, collection_id: str, faces: Sequence[FaceRecord]) -> None:
        """Store faces; durable and searchable on return. Face ids are unique (caller generates UUIDs)."""

    @abstractmethod
    def get_faces(self, collection_id: str, face_ids: Iterable[str]) -> dict[str, FaceRecord]:
        """Faces by id; ids that don't exist are absent from the result."""

    @abstractmethod
    def list_faces(
        self,
        collection_id: str,
        *,
        after: str | None = None,
        limit: int = 1000,
        user_id: str | None = None,
    ) -> list[FaceRecord]:
        """Faces ordered by face_id, strictly after ``after``; only ``user_id``'s faces when given."""

    @abstractmethod
    def delete_faces(self, collection_id: str, face_ids: Iterable[str]) -> list[str]:
        """Delete faces (vector and metadata); returns the ids that existed and are now gone."""

    @abstractmethod
    def count_faces(self, collection_id: str) -> int: ...

    # -- search: one template, backend candidate methods ------------------------------------------------
    #: Largest ``k`` (and candidate count) the backend can serve; None: the collection's size is the bound.
    max_k: int | None = None
    #: First round asks for max(k * candidates_factor, candidates_min) candidates.
    candidates_factor: int = 4
    candidates_min: int = 32
    #: Rounds before giving up on candidates that vanish between two requests; None: no such race.
    max_search_rounds: int | None = None

    def search(
        self,
        collection_id: str,
        vector: np.ndarray,
        *,
        k: int,
        max_distance: float | None = None,
    ) -> list[Neighbor]:
        """Up to ``k`` nearest faces with exact distance ≤ ``max_distance``, nearest first (ties by face_id).

        The backend's index only proposes candidates; their stored float32 vectors are re-scored in float64,
        the threshold applies to that exact distance, and a round whose k-th exact distance (or threshold) is
        not clearly inside the farthest candidate is repeated with ``WIDEN`` times more candidates."""
        if k < 1:
            raise InvalidParameterException("k must be at least 1")
        if self.max_k is not None and k > self.max_k:
            raise InvalidParameterException(f"k must be at most {self.max_k}")
        if max_distance is not None and not max_distance >= 0:
            raise InvalidParameterException("max_distance must be a non-negative number")
        query = checked_vector(vector)
        limit = math.inf if max_distance is None else float(max_distance)
        with self._search_scope(collection_id) as scope:
            keys, dists = self._exact_candidates(scope, query, k, limit)
        if not len(keys):
            return []
        # Everything tied with the k-th distance, so face_id can break the tie.
        chosen = dists <= dists[min(k, len(dists)) - 1]
        keys, dists = keys[chosen], dists[chosen]
        faces = self._hit_faces(scope, keys)
        # A face deleted since its candidate round is simply absent.
        hits = [
            Neighbor(face=faces[key], distance=d)
            for key, d in zip(keys.tolist(), dists.tolist(), strict=True)
            if key in faces
        ]
        hits.sort(key=lambda n: (n.distance, n.face.face_id))
        return hits[:k]

    def _exact_candidates(self, scope: Any, query: np.ndarray, k: int, limit: float) -> tuple[np.ndarray, np.ndarray]:
        """Candidate keys with exact distances (ascending, all ≤ ``limit``) that contain the top ``k``, as far
        as the backend's index finds them."""
        cap = self._candidate_cap(scope)
        count = min(cap, max(k * self.candidates_factor, self.candidates_min))
        q64 = query.astype(np.float64)
        rounds = 0
        while count > 0:
            found = self._candidates(scope, query, count, k, limit)
            if not len(found.keys):
                break
            keys = self._worth_scoring(found, k, limit)
            vectors = self._candidate_vectors(scope, keys)
            rounds += 1
            last = self.max_search_rounds is not None and rounds >= self.max_search_rounds
            if vectors is None:  # a candidate vanished between two requests: the same round again
                if last:
                    raise SearchCandidatesChanged("search candidates kept changing under concurrent deletes; try again")
                continue
            keys, dists = exact_distances(keys, vectors, q64, limit)
            complete = found.final or len(found.keys) < count or count >= cap or last
            if not complete and found.approx is not None:
                # Complete when the k-th exact distance (or the threshold) is clearly inside the farthest
                # candidate's engine distance: everything not returned is at least that far away.
                needed = dists[k - 1] if len(dists) >= k else limit
                farthest = float(found.approx[-1])
                complete = needed < farthest - 1e-4 * (1.0 + farthest)
            if complete:
                return keys, dists
            count = min(cap, count * WIDEN)
        return _NO_KEYS, _NO_DISTANCES

    def _worth_scoring(self, found: Candidates, k: int, limit: float) -> np.ndarray:
        """The candidates to re-score: all of them unless the backend prunes by its engine distance."""
        return found.keys

    @contextlib.contextmanager
    def _search_scope(self, collection_id: str) -> Iterator[Any]:
        """What one search holds while it gathers candidates (a lock, a snapshot); raises
        ResourceNotFoundException for an unknown collection. The hit faces are loaded after it is left."""
        yield collection_id

    def _candidate_cap(self, scope: Any) -> int:
        """Most candidates one round may ask for (``max_k``, or the collection's size)."""
        if self.max_k is None:
            raise NotImplementedError("a backend without max_k must say how many candidates it can give")
        return self.max_k

    @abstractmethod
    def _candidates(self, scope: Any, query: np.ndarray, count: int, k: int, limit: float) -> Candidates:
        """About ``count`` candidates for ``query`` (float32), the nearest by the backend's index."""

    @abstractmethod
    def _candidate_vectors(self, scope: Any, keys: np.ndarray) -> np.ndarray | None:
        """The stored float32 vectors of ``keys`` in order, or None when one no longer exists."""

    @abstractmethod
    def _hit_faces(self, scope: Any, keys: np.ndarray) -> dict[Any, FaceRecord]:
        """The faces behind ``keys`` (the key → FaceRecord); deleted ones are absent."""

    # -- users -------------------------------------------------------------------------------------
    @abstractmethod
    def create_user(self, collection_id: str, user: UserRecord) -> None:
        """Store a new user; raises ResourceAlreadyExistsException when the user id exists."""

    @abstractmethod
    def get_user(self, collection_id: str, user_id: str) -> UserRecord | None: ...

    @abstractmethod
    def list_users(self, collection_id: str, *, after: str | None = None, limit: int = 1000) -> list[UserRecord]:
        """Users ordered by user_id, strictly after ``after``."""

    @abstractmethod
    def delete_user(self, collection_id: str, user_id: str) -> None:
        """Remove the user and clear ``user_id`` on its faces (the faces stay indexed)."""

    @abstractmethod
    def count_users(self, collection_id: str) -> int: ...

    @abstractmethod
    def set_face_user(self, collection_id: str, face_ids: Iterable[str], user_id: str | None) -> None:
        """Associate faces with a user (or disassociate with None); also updates the user's status."""

    @abstractmethod
    def purge_deleted(self, collection_id: str, *, timeout: float = 300.0) -> dict[str, Any]:
        """Make sure deleted faces' descriptors are physically gone from the backend's files, and report
        what was done. ``delete_faces`` makes a face unsearchable at once; whether its bytes also leave the
        disk at once depends on the backend (the embedded store: yes; OpenSearch: only after this)."""

    # -- lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files, sockets and locks."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def exact_distances(
    keys: np.ndarray, vectors: np.ndarray, q64: np.ndarray, limit: float
) -> tuple[np.ndarray, np.ndarray]:
    """Float64 euclidean distances of float32 ``vectors`` to ``q64``: ``keys`` and distances, ascending
    (stable), only those ≤ ``limit``."""
    if not len(keys):
        return keys, _NO_DISTANCES
    diff = np.asarray(vectors, dtype=np.float32).reshape(-1, DIMENSION).astype(np.float64) - q64
    dists = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    order = np.argsort(dists, kind="stable")
    keys, dists = keys[order], dists[order]
    within = dists <= limit
    return keys[within], dists[within]
