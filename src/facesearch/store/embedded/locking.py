"""Locks of the embedded store: one process per directory (flock), and a readers/writer lock per collection.

The directory lock is what makes the store's single-writer design safe across processes: SQLite would let
two processes write, but each keeps its own in-memory vector index, which would silently miss the other's
faces. Inside a process, searches of a collection share its index while a mutation holds it exclusively.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from facesearch.errors import ResourceInUseException

LOCK_NAME = "LOCK"


class DirectoryLock:
    """An exclusive ``flock`` on ``<path>/LOCK`` for as long as the store is open; refused, not waited for,
    when another process (or another store object of this one) holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise ResourceInUseException(f"store {path} is open in another process or object") from None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        with contextlib.suppress(OSError):
            os.close(fd)


class RWLock:
    """Readers share, a writer is exclusive; waiting writers block new readers (no writer starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
