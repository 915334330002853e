"""How collections map onto OpenSearch indices: names, aliases, document ids, settings and the k-NN mapping.

Pure functions of the store's configuration (no client), so they are tested without a server.

Index names must be lowercase, collection ids are case-sensitive (``A0`` ≠ ``a0``), so the name carries a
readable lowercase slug plus a hash of the exact id; the real id is in the mapping's ``_meta``, which also
holds the collection's settings: a collection exists exactly when its index does.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from facesearch.errors import InvalidParameterException
from facesearch.store.records import DIMENSION, CollectionRecord

SCHEMA_VERSION = 1
ENGINES = ("lucene", "faiss")
FACE = "face"
USER = "user"
_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,98}$")
_SLUG_RE = re.compile(r"[^a-z0-9_\-]")


def checked_prefix(index_prefix: str) -> str:
    """A valid index prefix ending in a separator ("facesearch" → "facesearch-")."""
    if not _PREFIX_RE.match(index_prefix):
        raise InvalidParameterException(
            f"index_prefix {index_prefix!r} must be lowercase [a-z0-9_.-], start with a letter or digit, "
            "and be at most 100 characters"
        )
    if not index_prefix.endswith(("-", "_", ".")):
        index_prefix += "-"  # readable names, no accidental overlap
    return index_prefix


def face_doc_id(face_id: str) -> str:
    return f"{FACE}:{face_id}"


def user_doc_id(user_id: str) -> str:
    return f"{USER}:{user_id}"


def collection_meta(record: CollectionRecord) -> dict[str, Any]:
    """The collection's settings as stored in the index mapping's ``_meta``."""
    return {
        "facesearch_schema": SCHEMA_VERSION,
        "collection_id": record.collection_id,
        "created_at": record.created_at.isoformat(),
        "face_model_version": record.face_model_version,
        "threshold_floor": float(record.threshold_floor),
        "review_required": bool(record.review_required),
        "false_candidate_budget": record.false_candidate_budget,
    }


def record_from_meta(meta: dict[str, Any]) -> CollectionRecord:
    return CollectionRecord(
        collection_id=meta["collection_id"],
        created_at=datetime.fromisoformat(meta["created_at"]),
        face_model_version=meta["face_model_version"],
        threshold_floor=float(meta["threshold_floor"]),
        review_required=bool(meta["review_required"]),
        false_candidate_budget=meta.get("false_candidate_budget"),
    )


@dataclass(frozen=True)
class IndexLayout:
    """Names and index bodies for one store configuration."""

    prefix: str
    engine: str = "lucene"
    number_of_replicas: int = 0
    refresh_interval: str = "1s"
    hnsw_m: int = 32
    hnsw_ef_construction: int = 100
    faiss_ef_search: int = 256

    def alias(self, collection_id: str) -> str:
        """The alias every read and write of the collection goes through."""
        if not isinstance(collection_id, str) or not collection_id:
            raise InvalidParameterException("collection id must be a non-empty string")
        slug = _SLUG_RE.sub("_", collection_id.lower())[:80]
        digest = hashlib.sha256(collection_id.encode("utf-8")).hexdigest()[:16]
        return f"{self.prefix}{slug}-{digest}"

    def index(self, collection_id: str) -> str:
        """The concrete index behind the alias (a re-index would create ``-v2`` and swap the alias)."""
        return f"{self.alias(collection_id)}-v1"

    def owns(self, index: str, meta: dict[str, Any]) -> bool:
        """Whether ``index`` is one of this layout's collections (not a longer prefix's or a foreign index)."""
        cid = meta.get("collection_id")
        return isinstance(cid, str) and bool(meta.get("facesearch_schema")) and index == self.index(cid)

    def method(self) -> dict[str, Any]:
        return {
            "name": "hnsw",
            "engine": self.engine,
            "space_type": "l2",
            "parameters": {"m": self.hnsw_m, "ef_construction": self.hnsw_ef_construction},
        }

    def index_body(self, record: CollectionRecord) -> dict[str, Any]:
        """Settings, strict mapping (with the collection's ``_meta``) and alias of a new collection's index."""
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
                "_meta": collection_meta(record),
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
                    "vector": {"type": "knn_vector", "dimension": DIMENSION, "method": self.method()},
                },
            },
            "aliases": {self.alias(record.collection_id): {}},
        }
