"""Where audit records go. The sink is an interface so AWS deployments write to their own store (an S3 bucket
with Object Lock: ``facesearch.aws.audit``); the local default is an append-only JSONL file, one fsync'd line
per record, written before the result it records is returned.

Sealing (hash chain + HMAC) is not the sinks' business: ``facesearch.audit.chain.ChainedAuditSink`` wraps any
sink. A sink that can tell the chain's head (``head``) and lock out other writers (``exclusive``), as the JSONL
file does, lets several processes continue one chain.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from facesearch.audit.records import AuditRecord


class AuditSink(Protocol):
    def write(self, record: AuditRecord) -> None: ...


def record_line(record: AuditRecord) -> str:
    """The one serialisation of a record (the MAC is computed over the same JSON, see chain.py)."""
    return json.dumps(asdict(record), sort_keys=True, default=str) + "\n"


@dataclass(frozen=True)
class LogLine:
    """One line of a JSONL log as read back: ``record`` is None when the line is not a JSON object; ``torn``
    when it is the last line and has no newline (a write interrupted by a crash, or a cut)."""

    number: int
    raw: str
    record: dict[str, Any] | None
    torn: bool = False


class JsonlAuditSink:
    """Append-only JSON lines; each write is flushed and fsync'd before the search result is returned.

    A writer never appends onto a torn last line: it starts a new line first, so the torn fragment stays
    visible (``scan`` reports it) and the new record stays whole.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold off other processes' writers (an flock on ``<log>.lock``) while a chain head is read and extended."""
        with self._lock:
            fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def write(self, record: AuditRecord) -> None:
        data = record_line(record).encode()
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # never onto a torn line
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")
                os.fsync(fd)
            finally:
                os.close(fd)

    def head(self) -> dict[str, Any] | None:
        """The last whole record of the log (a torn last line is skipped), read from the end of the file."""
        if not self.path.is_file():
            return None
        with self.path.open("rb") as f:
            end = f.seek(0, os.SEEK_END)
            chunk, pos = b"", end
            while pos > 0:
                step = min(pos, 1 << 16)
                pos -= step
                f.seek(pos)
                chunk = f.read(step) + chunk
                lines = chunk.split(b"\n")
                # lines[0] may be a partial line unless we reached the start; lines[-1] is b"" or a torn tail
                whole = lines[1:-1] if pos > 0 else lines[:-1]
                for raw in reversed(whole):
                    if raw.strip():
                        try:
                            return json.loads(raw)
                        except ValueError:
                            continue
                if pos == 0:
                    return None
        return None

    def scan(self) -> Iterator[LogLine]:
        """Every line with its number, parsed or not; the caller decides what a bad line means."""
        if not self.path.is_file():
            return
        with self.path.open("rb") as f:
            for number, raw in enumerate(f, 1):
                text = raw.decode("utf-8", errors="replace")
                torn = not text.endswith("\n")
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except ValueError:
                    record = None
                yield LogLine(number, text.rstrip("\n"), record if isinstance(record, dict) else None, torn)

    def read(self) -> Iterator[dict[str, Any]]:
        """The whole records; lines that are not records (a torn last line) are skipped: see ``scan``."""
        for line in self.scan():
            if line.record is not None and not line.torn:
                yield line.record


class MemoryAuditSink:
    """Keeps records in a list: for tests and for callers that forward records elsewhere themselves."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def write(self, record: AuditRecord) -> None:
        self.records.append(record)
