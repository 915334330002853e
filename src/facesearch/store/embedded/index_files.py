"""The embedded store's index files: one per collection, a cache of SQLite that is verified before it is trusted.

``indexes/c<coll>-f<face_seq>-o<op_seq>-<crc32>.vidx`` holds a collection's vectors and IVF index
(vector_index.py). The name records the highest ``faces.seq`` the file contains, the highest
``face_ops.op_seq`` (a logged deletion) applied to it, and the CRC32 of its bytes. Saves are atomic (a tmp
file, fsync, rename, fsync of the directory), so a crash leaves either the old file or the new one plus a
``.tmp`` that the next open removes.

Loading checks the CRC, the format, the vector count against SQLite and a sample of vectors bit for bit, then
catches up exactly: keys are ``faces.seq`` (AUTOINCREMENT: never reused, monotonic), so rows above the saved
seq are the additions since the save, and ``face_ops`` above the saved op_seq the deletions. A missing, stale
or corrupt file is rebuilt from SQLite.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.store.embedded.locking import RWLock
from facesearch.store.embedded.schema import stream_vectors
from facesearch.store.embedded.vector_index import CollectionVectorIndex

log = logging.getLogger(__name__)

INDEX_DIR = "indexes"
_INDEX_FILE = re.compile(r"^c(\d+)-f(\d+)-o(\d+)-([0-9a-f]{8})\.vidx$")
_VERIFY_SAMPLE = 16


@dataclass(frozen=True)
class SavedFile:
    """A saved index file and what its name says about it."""

    coll: int
    face_seq: int  # highest faces.seq it contains
    op_seq: int  # highest face_ops.op_seq applied to it
    crc: int
    path: Path

    @classmethod
    def parse(cls, path: Path) -> SavedFile | None:
        m = _INDEX_FILE.match(path.name)
        return None if m is None else cls(int(m[1]), int(m[2]), int(m[3]), int(m[4], 16), path)


@dataclass
class CollectionIndex:
    """A collection's in-memory vector index and its relation to the saved file and to SQLite."""

    coll: int
    index: CollectionVectorIndex
    face_seq: int  # highest faces.seq contained
    op_seq: int  # highest face_ops.op_seq applied
    loaded_from: str  # "file", "rebuilt" or "new"
    caught_up: int = 0
    unsaved: int = 0
    saved_size: int = 0
    file: Path | None = None
    closed: bool = False
    lock: RWLock = field(default_factory=RWLock)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class IndexFiles:
    """The ``indexes`` directory of a store. Not thread-safe: the store calls it under its write lock."""

    def __init__(self, directory: Path, **index_options: Any) -> None:
        self.directory = directory
        self.directory.mkdir(exist_ok=True)
        self.index_options = index_options  # CollectionVectorIndex(**index_options) for new and loaded indexes

    def new_index(self) -> CollectionVectorIndex:
        return CollectionVectorIndex(**self.index_options)

    # -- the directory -----------------------------------------------------------------------------------
    def saved(self, coll: int | None = None) -> list[SavedFile]:
        """Saved files (of ``coll``, or all), oldest first."""
        found = (SavedFile.parse(p) for p in self.directory.iterdir())
        return sorted(
            (f for f in found if f is not None and (coll is None or f.coll == coll)),
            key=lambda f: (f.coll, f.face_seq, f.op_seq),
        )

    def remove(self, coll: int, keep: Path | None = None) -> None:
        """Remove every file of ``coll`` (saved or half-written) except ``keep``."""
        prefix = f"c{coll}-"
        for p in self.directory.iterdir():
            if p.name.startswith(prefix) and p != keep:
                p.unlink(missing_ok=True)

    def remove_orphans(self, live: set[int]) -> None:
        """Remove half-written saves and files of collections whose deletion was committed."""
        for p in self.directory.iterdir():
            saved = SavedFile.parse(p)
            if saved is None or saved.coll not in live:
                log.warning("removing orphan index file %s", p.name)
                p.unlink(missing_ok=True)

    # -- saving ------------------------------------------------------------------------------------------
    def write(self, ci: CollectionIndex) -> int:
        """Save ``ci`` atomically and remove its older files; returns the op_seq the file reflects. The caller
        holds ``ci.lock`` (read: the index must not change while it is written)."""
        face_seq, op_seq, size = ci.face_seq, ci.op_seq, len(ci.index)
        tmp = self.directory / f"c{ci.coll}-{uuid.uuid4().hex}.tmp"
        try:
            crc = 0
            with open(tmp, "wb") as f:
                for chunk in ci.index.to_bytes():
                    f.write(chunk)
                    crc = zlib.crc32(chunk, crc)
                f.flush()
                os.fsync(f.fileno())
            final = self.directory / f"c{ci.coll}-f{face_seq}-o{op_seq}-{crc:08x}.vidx"
            os.replace(tmp, final)
            _fsync_dir(self.directory)
        finally:
            tmp.unlink(missing_ok=True)
        self.remove(ci.coll, keep=final)
        ci.file, ci.unsaved, ci.saved_size = final, 0, size
        return op_seq

    # -- loading -----------------------------------------------------------------------------------------
    def load(self, db: sqlite3.Connection, coll: int, save_after: int) -> tuple[CollectionIndex, bool]:
        """The collection's index from its newest file, caught up with SQLite, or rebuilt from SQLite.

        Returns it and whether it must be saved now: when it was rebuilt, when it caught up a deletion the
        file still holds (a crash before DeleteFaces rewrote the file: that descriptor must leave the disk),
        or when it caught up at least ``save_after`` changes."""
        files = self.saved(coll)
        ci: CollectionIndex | None = None
        if files:
            try:
                ci = self._open(db, files[-1])
            except Exception as exc:
                name = files[-1].path.name
                log.warning("index %s is unusable (%s); rebuilding collection %d from SQLite", name, exc, coll)
        if ci is None:
            ci = CollectionIndex(coll, self.new_index(), 0, 0, "rebuilt")
            for seqs, vectors in stream_vectors(db, coll, after=0):
                ci.index.add(seqs, vectors)
                ci.face_seq = int(seqs[-1])
                ci.unsaved += len(seqs)
            ci.op_seq = _max_op_seq(db, coll)
            if not ci.unsaved and not files:
                ci.loaded_from = "new"
            if not (ci.unsaved or files):
                self.remove(coll)
            return ci, bool(ci.unsaved or files)
        # Catch up: deletions logged since the save, then rows added after it.
        gone = [s for (s,) in db.execute(
            "SELECT face_seq FROM face_ops WHERE coll = ? AND op_seq > ? ORDER BY op_seq", (coll, ci.op_seq)
        ) if s <= ci.face_seq]  # fmt: skip
        if gone:
            ci.index.remove(np.asarray(gone, dtype=np.uint64))
            ci.caught_up += len(gone)
        ci.op_seq = max(ci.op_seq, _max_op_seq(db, coll))
        for seqs, vectors in stream_vectors(db, coll, after=ci.face_seq):
            ci.index.add(seqs, vectors)
            ci.face_seq = int(seqs[-1])
            ci.caught_up += len(seqs)
        ci.unsaved = ci.caught_up
        if ci.caught_up:
            log.info("collection %d: index caught up with %d changes from SQLite", coll, ci.caught_up)
        return ci, bool(gone) or ci.unsaved >= max(save_after, ci.saved_size // 4)

    def _open(self, db: sqlite3.Connection, saved: SavedFile) -> CollectionIndex:
        data = saved.path.read_bytes()
        if zlib.crc32(data) != saved.crc:
            raise ValueError("checksum mismatch")
        index = CollectionVectorIndex.from_bytes(data, **self.index_options)
        del data
        # Size must match SQLite: rows up to the saved seq, plus those deleted after the save.
        coll, face_seq, op_seq = saved.coll, saved.face_seq, saved.op_seq
        present = db.execute("SELECT COUNT(*) FROM faces WHERE coll = ? AND seq <= ?", (coll, face_seq)).fetchone()[0]
        deleted = db.execute(
            "SELECT COUNT(*) FROM face_ops WHERE coll = ? AND op_seq > ? AND face_seq <= ?", (coll, op_seq, face_seq)
        ).fetchone()[0]
        if len(index) != present + deleted:
            raise ValueError(f"index holds {len(index)} vectors, SQLite expects {present + deleted}")
        sample = db.execute(
            "SELECT seq, vector FROM faces WHERE coll = ? AND seq <= ? ORDER BY random() LIMIT ?",
            (coll, face_seq, _VERIFY_SAMPLE),
        ).fetchall()
        for seq, blob in sample:
            if not np.array_equal(index.get(np.asarray([seq]))[0], np.frombuffer(blob, dtype="<f4")):
                raise ValueError(f"vector of key {seq} differs from SQLite")
        return CollectionIndex(coll, index, face_seq, op_seq, "file", saved_size=len(index), file=saved.path)


def _max_op_seq(db: sqlite3.Connection, coll: int) -> int:
    row = db.execute("SELECT MAX(op_seq) FROM face_ops WHERE coll = ?", (coll,)).fetchone()
    return int(row[0] or 0)
