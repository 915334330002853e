"""Embedded vector store: SQLite (source of truth) + one faiss vector index per collection (derived cache).

Layout of ``path``::

    LOCK                                   flock'ed while a process has the store open (one writer process)
    facesearch.sqlite3 (+ -wal, -shm)      collections, faces (descriptor as a float32 BLOB), users, face_ops
    indexes/c<id>-f<seq>-o<op>-<crc>.vidx  a collection's vectors + IVF index (store/vector_index.py)

Why faiss-cpu (vs usearch / hnswlib): at 1M faces the 1M goals (p95 ≤ 2 ms at recall@10 ≥ 0.99, ≥ 5k
faces/s) were out of reach for the graph we measured on our 2-core machine — the usearch HNSW this store used first
reached recall 0.977 at p95 4.8 ms and inserted 1.5k faces/s, bound by cache misses — while faiss' IVF with
4-bit product codes scanned by SIMD ("fast scan") and exact re-scoring meets them (vector_index.py has the
numbers and the layout). faiss is maintained (Meta), ships manylinux wheels, takes our 64-bit keys
(``IndexIDMap2``), removes by id, and serialises to bytes we write ourselves (atomically, with a CRC).

Crash safety. Every ``add_faces``/``delete_faces`` is one SQLite transaction (WAL, synchronous=FULL) that
commits *before* the vector index is touched, so an acknowledged write is on disk. The index file is a
cache: it is written periodically (every ``checkpoint_every`` changes, or a quarter of the index,
whichever is larger) and on ``close``/``checkpoint``, atomically (tmp file + fsync + rename) under a name
that records the highest ``faces.seq`` it contains, the highest ``face_ops.op_seq`` applied and a CRC32 of
its bytes. On open the file is verified (CRC, format, size against SQLite, a sample of vectors bit-for-bit)
and caught up: rows with ``seq`` above the saved one are added and the deletions logged in ``face_ops``
since then are removed. A missing, stale or corrupt file (or one in an older format, such as the usearch
files of earlier versions) is rebuilt from SQLite. Keys are ``faces.seq`` (AUTOINCREMENT, so never reused
and monotonic — which is what makes the catch-up exact).

Search. Below ``exact_below`` faces the float32 vectors are scanned exactly for ``max(k *
candidates_factor, candidates_min)`` candidates (widened until the k-th distance or the threshold is
surely inside them). From ``exact_below`` faces on, the IVF index (trained on the collection's own vectors
when it reaches that size, retrained as it grows) probes ``probe_fraction`` of its lists for ``refine``
candidates (or more for a large k). Either way candidates are re-scored in float64 from the exact float32
vectors, ``max_distance`` is applied to the exact distance and hits are sorted by (distance, face_id), so
a threshold is never applied to an approximate distance; the IVF's recall decides only which faces are
considered.

Threads. One lock serialises writers (SQLite has a single writer anyway). Each collection's index has a
readers/writer lock: searches share it, index mutations take it exclusively; checkpoints only read the
index, so searches go on while a file is written. Readers use one SQLite connection per thread.

Defaults (exact below 20k faces; IVF up to 1024 lists, 3/16 of them probed, 300 candidates re-scored),
measured with bench/bench_vector_stores.py on the standard 2-core machine (BENCHMARKS.md, "Vector stores")
on descriptors shaped like real ones: 1M faces recall@10 0.994 at p95 1.25–1.93 ms (three runs), 15–16k
faces/s through ``add_faces``; 100k faces 0.99 at p95 0.65–1.2 ms. On isotropic descriptors (the worst
case) 1M gives recall@10 0.82 but still finds 99.7 % of the same-person matches within 0.6.
``set_probe_fraction`` trades latency for recall live. Memory is ~0.6 KB per face (512 B float32 vector,
32 B code, ids).

Deleted biometric data: ``secure_delete`` zeroes freed SQLite pages and the WAL is checkpointed and
truncated after every deletion; DeleteFaces rewrites the collection's index file before it returns (and an
open after a crash in between rewrites it at once); index files of deleted collections are removed (also on
open, if a crash came between the commit and the unlink). What no store can promise: blocks of unlinked or
rewritten files are freed, not wiped, by the filesystem — keep the store on an encrypted volume.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import sqlite3
import threading
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.errors import (
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from facesearch.store.base import VectorStore
from facesearch.store.records import DIMENSION, CollectionRecord, FaceRecord, Neighbor, UserRecord
from facesearch.store.vector_index import CollectionVectorIndex

log = logging.getLogger(__name__)

DB_NAME = "facesearch.sqlite3"
INDEX_DIR = "indexes"
SCHEMA_VERSION = "1"
_INDEX_FILE = re.compile(r"^c(\d+)-f(\d+)-o(\d+)-([0-9a-f]{8})\.vidx$")
_CHUNK = 500  # ids per "IN (...)" statement
_REBUILD_CHUNK = 50_000
_VERIFY_SAMPLE = 16

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    face_model_version TEXT NOT NULL,
    threshold_floor REAL NOT NULL,
    review_required INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    coll INTEGER NOT NULL,
    face_id TEXT NOT NULL,
    image_id TEXT NOT NULL,
    external_image_id TEXT,
    user_id TEXT,
    source TEXT,
    confidence REAL NOT NULL,
    indexed_at TEXT NOT NULL,
    bounding_box TEXT NOT NULL,
    quality TEXT NOT NULL,
    vector BLOB NOT NULL,
    UNIQUE (coll, face_id)
);
CREATE INDEX IF NOT EXISTS faces_coll_seq ON faces (coll, seq);
CREATE INDEX IF NOT EXISTS faces_coll_user ON faces (coll, user_id, face_id) WHERE user_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS users (
    coll INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (coll, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS face_ops (
    op_seq INTEGER PRIMARY KEY AUTOINCREMENT,
    coll INTEGER NOT NULL,
    face_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS face_ops_coll ON face_ops (coll, op_seq);
"""

_FACE_COLUMNS = (
    "seq, face_id, image_id, external_image_id, user_id, source, confidence, indexed_at, bounding_box, quality, vector"
)


class _RWLock:
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


@dataclass
class _CollectionIndex:
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
    lock: _RWLock = field(default_factory=_RWLock)


def _vector_bytes(vector: Any) -> np.ndarray:
    v = np.asarray(vector)
    if v.shape != (DIMENSION,):
        raise InvalidParameterException(f"face vector must have shape ({DIMENSION},), got {v.shape}")
    v = np.ascontiguousarray(v, dtype="<f4")
    if not np.isfinite(v).all():
        raise InvalidParameterException("face vector must be finite")
    return v


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class EmbeddedStore(VectorStore):
    """SQLite + faiss store in a local directory. See the module docstring for the design."""

    def __init__(
        self,
        path: Path | str,
        *,
        exact_below: int = 20_000,
        candidates_factor: int = 4,
        candidates_min: int = 32,
        probe_fraction: float = 0.1875,
        refine: int = 300,
        max_lists: int = 1024,
        checkpoint_every: int = 100_000,
        preload: bool = True,
    ) -> None:
        self.path = Path(path)
        self.exact_below = exact_below
        self.candidates_factor = candidates_factor
        self.candidates_min = candidates_min
        self.set_probe_fraction(probe_fraction)
        self.refine = refine
        self.max_lists = max_lists
        self.checkpoint_every = checkpoint_every

        self.path.mkdir(parents=True, exist_ok=True)
        self._index_dir = self.path / INDEX_DIR
        self._index_dir.mkdir(exist_ok=True)
        self._lock_fd = os.open(self.path / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise ResourceInUseException(f"store {self.path} is open in another process or object") from None

        self._closed = False
        self._write_lock = threading.RLock()
        self._indexes_lock = threading.Lock()
        self._indexes: dict[int, _CollectionIndex] = {}
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._local = threading.local()
        try:
            self._db = self._connect()
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            self._coll_ids: dict[str, int] = dict(self._db.execute("SELECT collection_id, id FROM collections"))
            self._remove_orphan_files()
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # page images a crash left in the WAL
            if preload:
                with self._write_lock:
                    for coll in sorted(self._coll_ids.values()):
                        self._index_for(coll)
        except BaseException:
            self._release()
            raise

    # -- connections ---------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path / DB_NAME, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        self._check_open()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction on the writer connection; the caller holds ``_write_lock``."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidParameterException("store is closed")

    # -- collections ---------------------------------------------------------------------------------
    def _coll(self, collection_id: str) -> int:
        self._check_open()
        coll = self._coll_ids.get(collection_id)
        if coll is None:
            raise ResourceNotFoundException(f"The collection id: {collection_id} does not exist")
        return coll

    def create_collection(self, record: CollectionRecord) -> None:
        with self._write_lock:
            self._check_open()
            try:
                with self._transaction() as db:
                    cur = db.execute(
                        "INSERT INTO collections (collection_id, created_at, face_model_version, threshold_floor,"
                        " review_required) VALUES (?, ?, ?, ?, ?)",
                        (
                            record.collection_id,
                            record.created_at.isoformat(),
                            record.face_model_version,
                            float(record.threshold_floor),
                            int(record.review_required),
                        ),
                    )
            except sqlite3.IntegrityError:
                raise ResourceAlreadyExistsException(
                    f"The collection id: {record.collection_id} already exists"
                ) from None
            coll = int(cur.lastrowid or 0)
            self._coll_ids[record.collection_id] = coll
            self._index_for(coll)

    @staticmethod
    def _collection_from_row(row: tuple[Any, ...]) -> CollectionRecord:
        return CollectionRecord(
            collection_id=row[0],
            created_at=datetime.fromisoformat(row[1]),
            face_model_version=row[2],
            threshold_floor=row[3],
            review_required=bool(row[4]),
        )

    _COLLECTION_COLUMNS = "collection_id, created_at, face_model_version, threshold_floor, review_required"

    def get_collection(self, collection_id: str) -> CollectionRecord:
        coll = self._coll(collection_id)
        row = (
            self._reader()
            .execute(f"SELECT {self._COLLECTION_COLUMNS} FROM collections WHERE id = ?", (coll,))
            .fetchone()
        )
        if row is None:
            raise ResourceNotFoundException(f"The collection id: {collection_id} does not exist")
        return self._collection_from_row(row)

    def update_collection(self, record: CollectionRecord) -> None:
        with self._write_lock:
            coll = self._coll(record.collection_id)
            with self._transaction() as db:
                db.execute(
                    "UPDATE collections SET created_at = ?, face_model_version = ?, threshold_floor = ?,"
                    " review_required = ? WHERE id = ?",
                    (
                        record.created_at.isoformat(),
                        record.face_model_version,
                        float(record.threshold_floor),
                        int(record.review_required),
                        coll,
                    ),
                )

    def list_collections(self) -> list[CollectionRecord]:
        rows = self._reader().execute(f"SELECT {self._COLLECTION_COLUMNS} FROM collections ORDER BY collection_id")
        return [self._collection_from_row(r) for r in rows]

    def delete_collection(self, collection_id: str) -> None:
        with self._write_lock:
            coll = self._coll(collection_id)
            with self._transaction() as db:
                db.execute("DELETE FROM faces WHERE coll = ?", (coll,))
                db.execute("DELETE FROM users WHERE coll = ?", (coll,))
                db.execute("DELETE FROM face_ops WHERE coll = ?", (coll,))
                db.execute("DELETE FROM collections WHERE id = ?", (coll,))
            del self._coll_ids[collection_id]
            with self._indexes_lock:
                ci = self._indexes.pop(coll, None)
            if ci is not None:
                with ci.lock.write():
                    ci.closed = True
                    ci.index = self._new_index()  # free the vectors now
            self._remove_index_files(coll)
            # Old page images of the deleted rows may linger in the WAL until it is checkpointed.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- faces ---------------------------------------------------------------------------------------
    def add_faces(self, collection_id: str, faces: Sequence[FaceRecord]) -> None:
        if not faces:
            self._coll(collection_id)
            return
        vectors = np.stack([_vector_bytes(f.vector) for f in faces])
        ids = [f.face_id for f in faces]
        if len(set(ids)) != len(ids):
            raise InvalidParameterException("duplicate face ids in one add_faces call")
        with self._write_lock:
            coll = self._coll(collection_id)
            try:
                with self._transaction() as db:
                    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'faces'").fetchone()
                    base = int(row[0]) if row else 0
                    db.executemany(
                        "INSERT INTO faces (coll, face_id, image_id, external_image_id, user_id, source, confidence,"
                        " indexed_at, bounding_box, quality, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                coll,
                                f.face_id,
                                f.image_id,
                                f.external_image_id,
                                f.user_id,
                                f.source,
                                float(f.confidence),
                                f.indexed_at.isoformat(),
                                json.dumps(f.bounding_box),
                                json.dumps(f.quality),
                                vectors[i].tobytes(),
                            )
                            for i, f in enumerate(faces)
                        ],
                    )
                    seqs = [r[0] for r in db.execute("SELECT seq FROM faces WHERE seq > ? ORDER BY seq", (base,))]
                    if len(seqs) != len(faces):  # impossible with one writer; never index under wrong keys
                        raise RuntimeError("faces.seq allocation is not contiguous")
                    users = {f.user_id for f in faces if f.user_id is not None}
                    self._refresh_user_status(db, coll, users)
            except sqlite3.IntegrityError:
                raise InvalidParameterException("a face id already exists in this collection") from None
            # Durable from here on; now make it searchable.
            keys = np.asarray(seqs, dtype=np.uint64)
            self._mutate_index(coll, lambda ci: self._index_add(ci, keys, vectors))

    def _index_add(self, ci: _CollectionIndex, keys: np.ndarray, vectors: np.ndarray) -> None:
        ci.index.add(keys, vectors)
        ci.face_seq = max(ci.face_seq, int(keys[-1]))
        ci.unsaved += len(keys)

    def _mutate_index(self, coll: int, mutate: Any) -> None:
        """Apply an index change after its SQLite commit; on failure, reload the index from SQLite."""
        ci = self._index_for(coll)
        try:
            with ci.lock.write():
                mutate(ci)
        except Exception:
            log.exception("index update failed for collection %d; reloading it from SQLite", coll)
            with self._indexes_lock:
                self._indexes.pop(coll, None)
            with ci.lock.write():
                ci.closed = True
            ci = self._index_for(coll)
        if ci.unsaved >= max(self.checkpoint_every, ci.saved_size // 4):
            self._save_index(ci)

    def _face_from_row(self, row: tuple[Any, ...]) -> FaceRecord:
        vector = np.frombuffer(row[10], dtype="<f4")
        return FaceRecord(
            face_id=row[1],
            image_id=row[2],
            external_image_id=row[3],
            user_id=row[4],
            source=row[5],
            confidence=row[6],
            indexed_at=datetime.fromisoformat(row[7]),
            bounding_box=json.loads(row[8]),
            quality=json.loads(row[9]),
            vector=vector,
        )

    def get_faces(self, collection_id: str, face_ids: Iterable[str]) -> dict[str, FaceRecord]:
        coll = self._coll(collection_id)
        ids = list(dict.fromkeys(face_ids))
        db = self._reader()
        out: dict[str, FaceRecord] = {}
        for chunk in _chunks(ids):
            rows = db.execute(
                f"SELECT {_FACE_COLUMNS} FROM faces WHERE coll = ? AND face_id IN ({_marks(len(chunk))})",
                (coll, *chunk),
            )
            for row in rows:
                out[row[1]] = self._face_from_row(row)
        return out

    def list_faces(
        self,
        collection_id: str,
        *,
        after: str | None = None,
        limit: int = 1000,
        user_id: str | None = None,
    ) -> list[FaceRecord]:
        coll = self._coll(collection_id)
        if limit <= 0:
            return []
        sql = f"SELECT {_FACE_COLUMNS} FROM faces WHERE coll = ?"
        args: list[Any] = [coll]
        if after is not None:
            sql += " AND face_id > ?"
            args.append(after)
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        sql += " ORDER BY face_id LIMIT ?"
        args.append(int(limit))
        return [self._face_from_row(r) for r in self._reader().execute(sql, args)]

    def delete_faces(self, collection_id: str, face_ids: Iterable[str]) -> list[str]:
        ids = list(dict.fromkeys(face_ids))
        with self._write_lock:
            coll = self._coll(collection_id)
            if not ids:
                return []
            with self._transaction() as db:
                found: dict[str, tuple[int, str | None]] = {}
                for chunk in _chunks(ids):
                    for seq, face_id, user in db.execute(
                        f"SELECT seq, face_id, user_id FROM faces WHERE coll = ? AND face_id IN ({_marks(len(chunk))})",
                        (coll, *chunk),
                    ):
                        found[face_id] = (seq, user)
                if not found:
                    return []
                seqs = [seq for seq, _ in found.values()]
                for chunk in _chunks(seqs):
                    db.execute(f"DELETE FROM faces WHERE seq IN ({_marks(len(chunk))})", chunk)
                db.executemany("INSERT INTO face_ops (coll, face_seq) VALUES (?, ?)", [(coll, s) for s in seqs])
                op_seq = int(db.execute("SELECT MAX(op_seq) FROM face_ops WHERE coll = ?", (coll,)).fetchone()[0])
                self._refresh_user_status(db, coll, {u for _, u in found.values() if u is not None})
            keys = np.asarray(seqs, dtype=np.uint64)

            def remove(ci: _CollectionIndex) -> None:
                ci.index.remove(keys)
                ci.op_seq = max(ci.op_seq, op_seq)
                ci.unsaved += len(keys)

            self._mutate_index(coll, remove)
            self._erase_from_disk(coll, min(seqs))
        return [i for i in ids if i in found]

    def _erase_from_disk(self, coll: int, lowest_seq: int) -> None:
        """Deleted descriptors leave the disk when DeleteFaces returns, not at the next checkpoint: rewrite the
        collection's index file if it holds any of them, and checkpoint the WAL (old page images) into the
        database file, where secure_delete has zeroed them. Costs a file write: DeleteFaces measured 0.13–0.26 s at
        100k faces, 1.4–3.2 s at 1M."""
        ci = self._index_for(coll)
        saved = _INDEX_FILE.match(ci.file.name) if ci.file is not None else None
        if saved is not None and lowest_seq <= int(saved[2]) and ci.unsaved:
            self._save_index(ci)
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def count_faces(self, collection_id: str) -> int:
        coll = self._coll(collection_id)
        return int(self._reader().execute("SELECT COUNT(*) FROM faces WHERE coll = ?", (coll,)).fetchone()[0])

    def purge_deleted(self, collection_id: str, *, timeout: float = 300.0) -> dict[str, Any]:
        """Nothing is left to purge: ``delete_faces`` already erased the descriptors from every file."""
        self._coll(collection_id)
        return {"backend": "embedded", "purged": True, "note": "delete_faces erases descriptors at once"}

    def search(
        self,
        collection_id: str,
        vector: np.ndarray,
        *,
        k: int,
        max_distance: float | None = None,
    ) -> list[Neighbor]:
        if k < 1:
            raise InvalidParameterException("k must be at least 1")
        if max_distance is not None and not max_distance >= 0:
            raise InvalidParameterException("max_distance must be a non-negative number")
        query = _vector_bytes(vector)
        coll = self._coll(collection_id)
        ci = self._index_for(coll)
        limit = np.inf if max_distance is None else float(max_distance)
        with ci.lock.read():
            if ci.closed:
                raise ResourceNotFoundException(f"The collection id: {collection_id} does not exist")
            keys, dists = self._candidates(ci, query, k, limit)
        if not len(keys):
            return []
        # Everything tied with the k-th distance, so face_id can break the tie.
        cutoff = dists[min(k, len(dists)) - 1]
        chosen = dists <= cutoff
        by_seq = dict(zip(keys[chosen].tolist(), dists[chosen].tolist(), strict=True))
        hits: list[Neighbor] = []
        db = self._reader()
        for chunk in _chunks(list(by_seq)):
            rows = db.execute(
                f"SELECT {_FACE_COLUMNS} FROM faces WHERE coll = ? AND seq IN ({_marks(len(chunk))})", (coll, *chunk)
            )
            # A face deleted since the index answered is simply absent here.
            hits.extend(Neighbor(face=self._face_from_row(r), distance=by_seq[r[0]]) for r in rows)
        hits.sort(key=lambda n: (n.distance, n.face.face_id))
        return hits[:k]

    def _candidates(
        self, ci: _CollectionIndex, query: np.ndarray, k: int, limit: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keys and exact distances (ascending, all ≤ limit) that surely contain the top k below
        ``exact_below`` faces, and contain them with the IVF's recall above."""
        n = len(ci.index)
        if n == 0:
            return np.empty(0, np.uint64), np.empty(0)
        count = min(n, max(k * self.candidates_factor, self.candidates_min))
        q64 = query.astype(np.float64)
        if n >= self.exact_below:
            keys = ci.index.candidates(query, max(count, self.refine), self.probe_fraction)
            if keys is not None and len(keys) >= count:
                return self._rescore(ci, keys, q64, limit)
            # Untrained, or the probed lists held fewer faces than asked for: scan exactly instead.
        while True:
            keys, squared = ci.index.scan(query, count)
            keys, dists = self._rescore(ci, keys, q64, limit)
            if count >= n:
                return keys, dists
            # Complete when the k-th exact distance (or the threshold) is clearly below the farthest
            # candidate's float32 distance: everything not returned is at least that far.
            needed = dists[k - 1] if len(dists) >= k else limit
            farthest = float(np.sqrt(max(float(squared[-1]), 0.0)))
            if needed < farthest - 1e-4 * (1.0 + farthest):
                return keys, dists
            count = min(n, count * 4)

    @staticmethod
    def _rescore(
        ci: _CollectionIndex, keys: np.ndarray, q64: np.ndarray, limit: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact float64 distances of ``keys`` from their stored float32 vectors, ascending, ≤ ``limit``."""
        if not len(keys):
            return keys, np.empty(0)
        diff = ci.index.get(keys).astype(np.float64) - q64
        dists = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        order = np.argsort(dists, kind="stable")
        keys, dists = keys[order], dists[order]
        within = dists <= limit
        return keys[within], dists[within]

    # -- users ---------------------------------------------------------------------------------------
    @staticmethod
    def _refresh_user_status(db: sqlite3.Connection, coll: int, user_ids: Iterable[str]) -> None:
        users = sorted(set(user_ids))
        for chunk in _chunks(users):
            db.execute(
                "UPDATE users SET status = CASE WHEN EXISTS (SELECT 1 FROM faces f WHERE f.coll = users.coll"
                " AND f.user_id = users.user_id) THEN 'ACTIVE' ELSE 'CREATED' END"
                f" WHERE coll = ? AND user_id IN ({_marks(len(chunk))})",
                (coll, *chunk),
            )

    def create_user(self, collection_id: str, user: UserRecord) -> None:
        with self._write_lock:
            coll = self._coll(collection_id)
            try:
                with self._transaction() as db:
                    db.execute(
                        "INSERT INTO users (coll, user_id, created_at, status) VALUES (?, ?, ?, ?)",
                        (coll, user.user_id, user.created_at.isoformat(), user.status),
                    )
                    self._refresh_user_status(db, coll, [user.user_id])
            except sqlite3.IntegrityError:
                raise ResourceAlreadyExistsException(f"The user id: {user.user_id} already exists") from None

    @staticmethod
    def _user_from_row(row: tuple[Any, ...]) -> UserRecord:
        return UserRecord(user_id=row[0], created_at=datetime.fromisoformat(row[1]), status=row[2])

    def get_user(self, collection_id: str, user_id: str) -> UserRecord | None:
        coll = self._coll(collection_id)
        row = (
            self._reader()
            .execute("SELECT user_id, created_at, status FROM users WHERE coll = ? AND user_id = ?", (coll, user_id))
            .fetchone()
        )
        return None if row is None else self._user_from_row(row)

    def list_users(self, collection_id: str, *, after: str | None = None, limit: int = 1000) -> list[UserRecord]:
        coll = self._coll(collection_id)
        if limit <= 0:
            return []
        rows = self._reader().execute(
            "SELECT user_id, created_at, status FROM users WHERE coll = ? AND user_id > ? ORDER BY user_id LIMIT ?",
            (coll, "" if after is None else after, int(limit)),
        )
        return [self._user_from_row(r) for r in rows]

    def delete_user(self, collection_id: str, user_id: str) -> None:
        with self._write_lock:
            coll = self._coll(collection_id)
            with self._transaction() as db:
                cur = db.execute("DELETE FROM users WHERE coll = ? AND user_id = ?", (coll, user_id))
                if cur.rowcount == 0:
                    raise ResourceNotFoundException(f"The user id: {user_id} does not exist")
                db.execute("UPDATE faces SET user_id = NULL WHERE coll = ? AND user_id = ?", (coll, user_id))

    def count_users(self, collection_id: str) -> int:
        coll = self._coll(collection_id)
        return int(self._reader().execute("SELECT COUNT(*) FROM users WHERE coll = ?", (coll,)).fetchone()[0])

    def set_face_user(self, collection_id: str, face_ids: Iterable[str], user_id: str | None) -> None:
        ids = list(dict.fromkeys(face_ids))
        with self._write_lock:
            coll = self._coll(collection_id)
            with self._transaction() as db:
                if (
                    user_id is not None
                    and not db.execute("SELECT 1 FROM users WHERE coll = ? AND user_id = ?", (coll, user_id)).fetchone()
                ):
                    raise ResourceNotFoundException(f"The user id: {user_id} does not exist")
                touched: set[str] = set() if user_id is None else {user_id}
                for chunk in _chunks(ids):
                    touched.update(
                        u
                        for (u,) in db.execute(
                            f"SELECT DISTINCT user_id FROM faces WHERE coll = ? AND user_id IS NOT NULL"
                            f" AND face_id IN ({_marks(len(chunk))})",
                            (coll, *chunk),
                        )
                    )
                    db.execute(
                        f"UPDATE faces SET user_id = ? WHERE coll = ? AND face_id IN ({_marks(len(chunk))})",
                        (user_id, coll, *chunk),
                    )
                self._refresh_user_status(db, coll, touched)

    # -- index files ---------------------------------------------------------------------------------
    def _new_index(self) -> CollectionVectorIndex:
        # Train once the IVF will be searched; ``exact_below=0`` (tests) still trains on a handful of faces.
        return CollectionVectorIndex(train_at=self.exact_below, max_lists=self.max_lists)

    def _index_files(self, coll: int | None = None) -> list[tuple[int, int, int, int, Path]]:
        out = []
        for p in self._index_dir.iterdir():
            m = _INDEX_FILE.match(p.name)
            if m and (coll is None or int(m[1]) == coll):
                out.append((int(m[1]), int(m[2]), int(m[3]), int(m[4], 16), p))
        return out

    def _remove_index_files(self, coll: int, keep: Path | None = None) -> None:
        prefix = f"c{coll}-"
        for p in self._index_dir.iterdir():
            if p.name.startswith(prefix) and p != keep:
                p.unlink(missing_ok=True)

    def _remove_orphan_files(self) -> None:
        """Remove half-written saves and files of collections whose deletion was committed."""
        live = set(self._coll_ids.values())
        for p in self._index_dir.iterdir():
            m = _INDEX_FILE.match(p.name)
            if m is None or int(m[1]) not in live:
                log.warning("removing orphan index file %s", p.name)
                p.unlink(missing_ok=True)

    def _index_for(self, coll: int) -> _CollectionIndex:
        ci = self._indexes.get(coll)
        if ci is not None:
            return ci
        with self._write_lock:  # loading reads SQLite consistently and may save
            ci = self._indexes.get(coll)
            if ci is None:
                if coll not in self._coll_ids.values():  # deleted meanwhile: don't resurrect an index
                    raise ResourceNotFoundException("The collection does not exist")
                ci = self._load_index(coll)
                with self._indexes_lock:
                    self._indexes[coll] = ci
            return ci

    def _load_index(self, coll: int) -> _CollectionIndex:
        db = self._db
        files = sorted(self._index_files(coll), key=lambda t: (t[1], t[2]))
        ci: _CollectionIndex | None = None
        if files:
            _, face_seq, op_seq, crc, file = files[-1]
            try:
                ci = self._open_file(coll, file, face_seq, op_seq, crc)
            except Exception as exc:
                log.warning("index %s is unusable (%s); rebuilding collection %d from SQLite", file.name, exc, coll)
        if ci is None:
            ci = _CollectionIndex(coll, self._new_index(), 0, 0, "rebuilt")
            for seqs, vectors in self._stream_vectors(db, coll, after=0):
                ci.index.add(seqs, vectors)
                ci.face_seq = int(seqs[-1])
                ci.unsaved += len(seqs)
            row = db.execute("SELECT MAX(op_seq) FROM face_ops WHERE coll = ?", (coll,)).fetchone()
            ci.op_seq = int(row[0] or 0)
            if not ci.unsaved and not files:
                ci.loaded_from = "new"
            if ci.unsaved or files:
                self._save_index(ci)
            else:
                self._remove_index_files(coll)
            return ci
        # Catch up: deletions logged since the save, then rows added after it.
        gone = [s for (s,) in db.execute(
            "SELECT face_seq FROM face_ops WHERE coll = ? AND op_seq > ? ORDER BY op_seq", (coll, ci.op_seq)
        ) if s <= ci.face_seq]  # fmt: skip
        if gone:
            ci.index.remove(np.asarray(gone, dtype=np.uint64))
            ci.caught_up += len(gone)
        row = db.execute("SELECT MAX(op_seq) FROM face_ops WHERE coll = ?", (coll,)).fetchone()
        ci.op_seq = max(ci.op_seq, int(row[0] or 0))
        for seqs, vectors in self._stream_vectors(db, coll, after=ci.face_seq):
            ci.index.add(seqs, vectors)
            ci.face_seq = int(seqs[-1])
            ci.caught_up += len(seqs)
        ci.unsaved = ci.caught_up
        if ci.caught_up:
            log.info("collection %d: index caught up with %d changes from SQLite", coll, ci.caught_up)
        # A deletion the file still holds (a crash before DeleteFaces rewrote it) must leave the disk now.
        if gone or ci.unsaved >= max(self.checkpoint_every, ci.saved_size // 4):
            self._save_index(ci)
        return ci

    def _open_file(self, coll: int, file: Path, face_seq: int, op_seq: int, crc: int) -> _CollectionIndex:
        data = file.read_bytes()
        if zlib.crc32(data) != crc:
            raise ValueError("checksum mismatch")
        index = CollectionVectorIndex.from_bytes(data, train_at=self.exact_below, max_lists=self.max_lists)
        del data
        # Size must match SQLite: rows up to the saved seq, plus those deleted after the save.
        db = self._db
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
        size = len(index)
        return _CollectionIndex(coll, index, face_seq, op_seq, "file", saved_size=size, file=file)

    @staticmethod
    def _stream_vectors(db: sqlite3.Connection, coll: int, after: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        cur = db.execute("SELECT seq, vector FROM faces WHERE coll = ? AND seq > ? ORDER BY seq", (coll, after))
        while rows := cur.fetchmany(_REBUILD_CHUNK):
            seqs = np.fromiter((r[0] for r in rows), dtype=np.uint64, count=len(rows))
            vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), DIMENSION)
            yield seqs, vectors

    def _save_index(self, ci: _CollectionIndex) -> None:
        """Write the index atomically and prune the deletions it already reflects; holds ``_write_lock``."""
        with self._write_lock, ci.lock.read():
            if ci.closed:
                return
            face_seq, op_seq, size = ci.face_seq, ci.op_seq, len(ci.index)
            tmp = self._index_dir / f"c{ci.coll}-{uuid.uuid4().hex}.tmp"
            try:
                crc = 0
                with open(tmp, "wb") as f:
                    for chunk in ci.index.to_bytes():
                        f.write(chunk)
                        crc = zlib.crc32(chunk, crc)
                    f.flush()
                    os.fsync(f.fileno())
                final = self._index_dir / f"c{ci.coll}-f{face_seq}-o{op_seq}-{crc:08x}.vidx"
                os.replace(tmp, final)
                _fsync_dir(self._index_dir)
            finally:
                tmp.unlink(missing_ok=True)
            self._remove_index_files(ci.coll, keep=final)
            ci.file, ci.unsaved, ci.saved_size = final, 0, size
        with self._transaction() as db:
            db.execute("DELETE FROM face_ops WHERE coll = ? AND op_seq <= ?", (ci.coll, op_seq))

    # -- operations ----------------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Save every index with unsaved changes (the service may call this when idle)."""
        with self._write_lock:
            self._check_open()
            for ci in list(self._indexes.values()):
                if ci.unsaved or (ci.file is None and len(ci.index)):
                    self._save_index(ci)

    def set_probe_fraction(self, probe_fraction: float) -> None:
        """Change the share of IVF lists a search probes (recall vs latency), live; not persisted."""
        if not 0 < probe_fraction <= 1:
            raise InvalidParameterException("probe_fraction must be in (0, 1]")
        self.probe_fraction = float(probe_fraction)

    def index_stats(self, collection_id: str) -> dict[str, Any]:
        """Size and memory of a collection's index and how it was opened (for benchmarks and health)."""
        ci = self._index_for(self._coll(collection_id))
        return {
            "size": len(ci.index),
            "memory_bytes": ci.index.memory_usage(),
            "loaded_from": ci.loaded_from,
            "caught_up": ci.caught_up,
            "unsaved": ci.unsaved,
            "file": None if ci.file is None else ci.file.name,
            "nlist": ci.index.nlist,
            "trained_size": ci.index.trained_size,
            "probe_fraction": self.probe_fraction,
            "refine": self.refine,
            "exact_below": self.exact_below,
        }

    def close(self) -> None:
        with self._write_lock:
            if self._closed:
                return
            try:
                self.checkpoint()
            finally:
                self._closed = True
                self._release()

    def _release(self) -> None:
        with self._conns_lock:
            for conn in self._conns:
                with contextlib.suppress(Exception):
                    conn.close()
            self._conns.clear()
        self._closed = True
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)
