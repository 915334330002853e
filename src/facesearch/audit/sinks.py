"""Where audit records go. The sink is an interface so AWS deployments write to their own store (an S3 bucket
with Object Lock: ``facesearch.aws.audit``); the local default is an append-only JSONL file, one fsync'd line
per record, written before the result it records is returned."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from facesearch.audit.records import AuditRecord


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
