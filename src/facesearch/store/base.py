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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from facesearch.store.records import CollectionRecord, FaceRecord, Neighbor, UserRecord


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

    @abstractmethod
    def search(
        self,
        collection_id: str,
        vector: np.ndarray,
        *,
        k: int,
        max_distance: float | None = None,
    ) -> list[Neighbor]:
        """Up to ``k`` nearest faces with exact distance ≤ ``max_distance``, nearest first."""

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

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
