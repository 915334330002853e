"""What one audit record says: who did what to which collection, with which query, at what threshold, and
what came back. A reviewer must be able to answer "who searched for whom, with which photo, and what did they
see" from these records alone.

A change of state (IndexFaces, DeleteFaces, UpdateCollection, ...) is recorded twice: an ``intent`` record
before the change, naming exactly what will change, and an ``outcome`` record after it, linked by
``operation_id``. A search has one record (``phase`` None), written before its result is returned; a refused or
failed request has one record with ``status`` "refused" or "failed" and the reason in ``error``.

The chain fields (``chain``, ``seq``, ``prev``, ``key_id``, ``mac``) are filled in by
``facesearch.audit.chain.ChainedAuditSink`` when the record is written; callers leave them empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class AuditRecord:
    operation: str
    caller: str
    collection_id: str | None
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    purpose: str | None = None
    request_id: str | None = None
    query_image_sha256: str | None = None
    query_face_id: str | None = None
    query_user_id: str | None = None
    threshold: float | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    phase: str | None = None  # "intent" | "outcome" for changes of state; None for a search or a refusal
    status: str = "ok"  # "ok" | "refused" (the request was invalid) | "failed" (the service could not do it)
    error: str | None = None  # "Code: message" when status is not ok
    operation_id: str | None = None  # links an intent record to its outcome
    chain: str | None = None
    seq: int | None = None
    prev: str | None = None
    key_id: str | None = None
    mac: str | None = None
