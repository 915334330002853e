"""Tamper evidence for any audit sink: a hash chain sealed with an HMAC key, and checkpoints of its head.

Each record carries ``seq`` (1, 2, 3 … per chain), ``prev`` (the previous record's ``mac``, or 64 zeros for the
first) and ``mac`` = HMAC-SHA256(key, the record's canonical JSON without ``mac``). So a record cannot be
edited, forged, removed or moved without the key, and without it being visible in ``verify.py``:
the MAC covers every field, ``seq`` reveals gaps and reordering, ``prev`` ties each record to the one before.

Truncating the tail leaves a valid shorter chain; that is what checkpoints are for: every
``checkpoint_every`` records the head (chain, seq, mac), itself sealed, is appended to a checkpoint store kept
apart from the log (``FACESEARCH_AUDIT_CHECKPOINTS``; best on storage the log's writer cannot rewrite).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from facesearch.audit.records import AuditRecord
from facesearch.audit.sinks import AuditSink

GENESIS = "0" * 64
KEY_FILE = "audit.key"


class AuditKeyError(ValueError):
    """The audit key is missing, unreadable, or readable by others."""


def key_id(key: bytes) -> str:
    """Names the key in every record (not secret): verify can tell a wrong key from a forgery."""
    return hashlib.sha256(b"facesearch-audit-key-id\0" + key).hexdigest()[:16]


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes the MAC covers: the record as JSON (as written and read back), keys sorted, without ``mac``."""
    body = {k: v for k, v in record.items() if k != "mac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def compute_mac(key: bytes, record: dict[str, Any]) -> str:
    return hmac.new(key, canonical(record), hashlib.sha256).hexdigest()


def as_written(record: AuditRecord) -> dict[str, Any]:
    """The record as a reader will see it after a JSON round trip (tuples become lists, datetimes strings)."""
    return json.loads(json.dumps(asdict(record), sort_keys=True, default=str))


def load_key(*, key: str | None, home: Path, create: bool = True) -> bytes:
    """The HMAC key: ``FACESEARCH_AUDIT_KEY`` if set, else ``home/audit.key`` (created once, mode 0600, by a
    writer; a verifier never creates one).

    A key file that others can read is refused: whoever reads the key can write records that verify.
    """
    if key:
        return key.encode()
    path = home / KEY_FILE
    if not create and not path.is_file():
        raise AuditKeyError(f"no audit key: set FACESEARCH_AUDIT_KEY or provide {path}")
    home.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
    mode = path.stat().st_mode
    if mode & 0o077:
        raise AuditKeyError(f"audit key file {path} is readable by others (mode {oct(mode & 0o777)}); chmod 600 it")
    value = path.read_text().strip()
    if not value:
        raise AuditKeyError(f"audit key file {path} is empty")
    return value.encode()


@dataclass(frozen=True)
class Head:
    chain: str
    seq: int
    mac: str


class JsonlCheckpointStore:
    """Sealed checkpoints of chain heads, one JSON line each, in a file apart from the log."""

    def __init__(self, path: str | Path, key: bytes) -> None:
        self.path = Path(path)
        self.key = key

    def write(self, head: Head) -> None:
        entry = {
            "chain": head.chain,
            "seq": head.seq,
            "mac": head.mac,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "key_id": key_id(self.key),
        }
        entry["cmac"] = hmac.new(self.key, canonical(entry), hashlib.sha256).hexdigest()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            prefix = b"\n" if size and os.pread(fd, 1, size - 1) != b"\n" else b""
            os.write(fd, prefix + (json.dumps(entry, sort_keys=True) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[tuple[int, dict[str, Any] | None]]:
        """(line number, entry or None when the line is not a checkpoint)."""
        if not self.path.is_file():
            return []
        out: list[tuple[int, dict[str, Any] | None]] = []
        for number, raw in enumerate(self.path.read_text(errors="replace").splitlines(), 1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                entry = None
            out.append((number, entry if isinstance(entry, dict) else None))
        return out

    def valid(self, entry: dict[str, Any]) -> bool:
        cmac = entry.get("cmac")
        body = {k: v for k, v in entry.items() if k != "cmac"}
        expected = hmac.new(self.key, canonical(body), hashlib.sha256).hexdigest()
        return isinstance(cmac, str) and hmac.compare_digest(cmac, expected)


class ChainedAuditSink:
    """Seals each record into the chain, then hands it to ``inner`` (any ``AuditSink``: JSONL, S3, memory).

    If ``inner`` can report its last record (``head()``) and lock out other writers (``exclusive()``), the
    chain continues across processes (the JSONL file); otherwise this writer starts its own chain (a new
    ``chain`` id per instance, e.g. per Lambda execution environment) and keeps the head in memory.
    """

    def __init__(
        self,
        inner: AuditSink,
        key: bytes,
        *,
        checkpoints: JsonlCheckpointStore | None = None,
        checkpoint_every: int = 10,
    ) -> None:
        self.inner = inner
        self.key = key
        self.key_id = key_id(key)
        self.checkpoints = checkpoints
        self.checkpoint_every = checkpoint_every
        self._head: Head | None = None
        self._chain = str(uuid.uuid4())
        self._lock = threading.Lock()

    def read(self) -> Iterator[dict[str, Any]]:
        """The records of the sealed log (readers such as ``collection report`` need no key)."""
        reader = getattr(self.inner, "read", None)
        if reader is None:
            return iter(())
        return iter(reader())

    def _exclusive(self) -> contextlib.AbstractContextManager[Any]:
        exclusive = getattr(self.inner, "exclusive", None)
        return exclusive() if exclusive else contextlib.nullcontext()

    def _current_head(self) -> Head | None:
        read_head = getattr(self.inner, "head", None)
        if read_head is None:
            return self._head
        last = read_head()
        if not last or not isinstance(last.get("seq"), int) or not last.get("chain") or not last.get("mac"):
            return None  # an empty (or never sealed) log starts a chain
        return Head(str(last["chain"]), int(last["seq"]), str(last["mac"]))

    def seal(self, record: AuditRecord, head: Head | None) -> AuditRecord:
        sealed = dataclasses.replace(
            record,
            chain=head.chain if head else self._chain,
            seq=head.seq + 1 if head else 1,
            prev=head.mac if head else GENESIS,
            key_id=self.key_id,
            mac=None,
        )
        return dataclasses.replace(sealed, mac=compute_mac(self.key, as_written(sealed)))

    def write(self, record: AuditRecord) -> None:
        with self._lock, self._exclusive():
            sealed = self.seal(record, self._current_head())
            self.inner.write(sealed)
            assert sealed.chain and sealed.seq and sealed.mac
            self._head = Head(sealed.chain, sealed.seq, sealed.mac)
            if self.checkpoints is not None and sealed.seq % self.checkpoint_every == 0:
                self.checkpoints.write(self._head)

    def checkpoint(self) -> Head | None:
        """Write a checkpoint of the current head now (``facesearch audit checkpoint``, e.g. from cron)."""
        with self._lock, self._exclusive():
            head = self._current_head()
            if head is not None and self.checkpoints is not None:
                self.checkpoints.write(head)
            return head
