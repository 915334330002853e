"""Accountability: every search and every deletion leaves a record of who did it, when, and what came back.

Face matching is biometric identification; a reviewer must be able to answer "who searched for whom, with
which photo, at what threshold, and what did they see". The sink is an interface so AWS deployments can
write to their own store; the embedded default is an append-only JSONL file (one fsync'd line per event).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol


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


class AuditSink(Protocol):
    def write(self, record: AuditRecord) -> None: ...


class JsonlAuditSink:
    """Append-only JSON lines; each write is flushed and fsync'd before the search result is returned."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, record: AuditRecord) -> None:
        line = json.dumps(asdict(record), sort_keys=True, default=str) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def read(self) -> Iterator[dict[str, Any]]:
        if not self.path.is_file():
            return
        with self.path.open() as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


class MemoryAuditSink:
    """Keeps records in a list: for tests and for callers that forward records elsewhere themselves."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def write(self, record: AuditRecord) -> None:
        self.records.append(record)
