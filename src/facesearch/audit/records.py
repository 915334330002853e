"""What one audit record says: who did what to which collection, with which query, at what threshold, and
what came back. A reviewer must be able to answer "who searched for whom, with which photo, and what did they
see" from these records alone."""

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
