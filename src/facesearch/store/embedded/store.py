"""Embedded vector store: SQLite (source of truth) + one faiss vector index per collection (derived cache).

Layout of ``path``::

    LOCK                                   flock'ed while a process has the store open (one writer process)
    facesearch.sqlite3 (+ -wal, -shm)      collections, faces (descriptor as a float32 BLOB), users, face_ops
    indexes/c<id>-f<seq>-o<op>-<crc>.vidx  a collection's vectors + IVF index (vector_index.py)

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
index, so searches go on while a file is written. Readers use one SQLite connection per thread. faiss runs
on ``faiss_threads`` OpenMP threads (default 1), set in the calling thread before every faiss call, since
OpenMP keeps the setting per thread: concurrent requests then use one core each instead of each spawning a
team per core, which oversubscribes the cores — on the 2-core machine the store's tests took 211 s with
faiss' default and 12 s pinned to one thread, a one-face add_faces took 8–36 ms instead of 0.4–1.3 ms on a
busy machine; searches measured the same either way (BENCHMARKS.md, "Concurrent search"). The exception
is the IVF's (re)training of a collection of 20k faces or more: k-means is where threads pay off, so it runs
on ``train_threads`` (default None: every core of the affinity mask).

Defaults (exact below 20k faces; IVF up to 1024 lists, 3/16 of them probed, 300 candidates re-scored),
measured with bench/bench_vector_stores.py on the standard 2-core machine (BENCHMARKS.md, "Vector stores")
on descriptors shaped like real ones: 1M faces recall@10 0.994 at p95 1.25–1.93 ms (three runs), 15–16k
faces/s through ``add_faces``; 100k faces 0.99 at p95 0.65–1.2 ms. On isotropic descriptors (the worst
case) 1M gives recall@10 0.82 but still finds 99.7 % of the same-person matches within 0.6.
``set_probe_fraction`` trades latency for recall live. Memory is ~0.6 KB per face (512 B float32 vector,
32 B code, ids).

Modules: schema.py (SQLite), index_files.py (saving, verifying, catching up index files),
vector_index.py (the faiss indexes), locking.py (directory and readers/writer locks), this file (the
operations). Search is the template of store/base.py; this store supplies the candidates.

Deleted biometric data: ``secure_delete`` zeroes freed SQLite pages and the WAL is checkpointed and
truncated after every deletion; DeleteFaces rewrites the collection's index file before it returns (and an
open after a crash in between rewrites it at once); index files of deleted collections are removed (also on
open, if a crash came between the commit and the unlink). What no store can promise: blocks of unlinked or
rewritten files are freed, not wiped, by the filesystem — keep the store on an encrypted volume.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.errors import (
    InvalidParameterException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from facesearch.store.base import Candidates, VectorStore, checked_vector
from facesearch.store.embedded import schema
from facesearch.store.embedded.index_files import INDEX_DIR, CollectionIndex, IndexFiles, SavedFile
from facesearch.store.embedded.locking import DirectoryLock
from facesearch.store.embedded.schema import chunks, marks
from facesearch.store.embedded.vector_index import cpu_count, use_threads
from facesearch.store.records import CollectionRecord, FaceRecord, UserRecord

log = logging.getLogger(__name__)


class _SearchScope:
    """A search's view of one collection: its index (read-locked while candidates are gathered)."""

    __slots__ = ("ci", "size", "use_ivf")

    def __init__(self, ci: CollectionIndex, use_ivf: bool) -> None:
        self.ci = ci
        self.size = len(ci.index)
        self.use_ivf = use_ivf


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
        faiss_threads: int | None = 1,
        train_threads: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.exact_below = exact_below
        self.candidates_factor = candidates_factor
        self.candidates_min = candidates_min
        self.set_probe_fraction(probe_fraction)
        self.refine = refine
        self.max_lists = max_lists
        self.checkpoint_every = checkpoint_every
        if faiss_threads is not None and faiss_threads < 1:
            raise InvalidParameterException("faiss_threads must be a positive integer or None (every core)")
        self.faiss_threads = faiss_threads
        if train_threads is not None and train_threads < 1:
            raise InvalidParameterException("train_threads must be a positive integer or None (every core)")
        self.train_threads = train_threads

        self.path.mkdir(parents=True, exist_ok=True)
        # Train once the IVF will be searched; ``exact_below=0`` (tests) still trains on a handful of faces.
        self._files = IndexFiles(
            self.path / INDEX_DIR,
            train_at=exact_below,
            max_lists=max_lists,
            train_threads=cpu_count() if train_threads is None else train_threads,
        )
        self._dir_lock = DirectoryLock(self.path)

        self._closed = False
        self._write_lock = threading.RLock()
        self._indexes_lock = threading.Lock()
        self._indexes: dict[int, CollectionIndex] = {}
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._local = threading.local()
        try:
            self._db = self._connect()
            self._coll_ids: dict[str, int] = schema.initialise(self._db)
            self._files.remove_orphans(set(self._coll_ids.values()))
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
        conn = schema.connect(self.path)
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
                        " review_required, false_candidate_budget) VALUES (?, ?, ?, ?, ?, ?)",
                        schema.collection_row(record),
                    )
            except sqlite3.IntegrityError:
                raise ResourceAlreadyExistsException(
                    f"The collection id: {record.collection_id} already exists"
                ) from None
            coll = int(cur.lastrowid or 0)
            self._coll_ids[record.collection_id] = coll
            self._index_for(coll)

    def get_collection(self, collection_id: str) -> CollectionRecord:
        coll = self._coll(collection_id)
        row = (
            self._reader()
            .execute(f"SELECT {schema.COLLECTION_COLUMNS} FROM collections WHERE id = ?", (coll,))
            .fetchone()
        )
        if row is None:
            raise ResourceNotFoundException(f"The collection id: {collection_id} does not exist")
        return schema.collection_from_row(row)

    def update_collection(self, record: CollectionRecord) -> None:
        with self._write_lock:
            coll = self._coll(record.collection_id)
            with self._transaction() as db:
                db.execute(
                    "UPDATE collections SET created_at = ?, face_model_version = ?, threshold_floor = ?,"
                    " review_required = ?, false_candidate_budget = ? WHERE id = ?",
                    (*schema.collection_row(record)[1:], coll),
                )

    def list_collections(self) -> list[CollectionRecord]:
        rows = self._reader().execute(f"SELECT {schema.COLLECTION_COLUMNS} FROM collections ORDER BY collection_id")
        return [schema.collection_from_row(r) for r in rows]

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
                    ci.index = self._files.new_index()  # free the vectors now
            self._files.remove(coll)
            # Old page images of the deleted rows may linger in the WAL until it is checkpointed.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- faces ---------------------------------------------------------------------------------------
    def add_faces(self, collection_id: str, faces: Sequence[FaceRecord]) -> None:
        if not faces:
            self._coll(collection_id)
            return
        vectors = np.stack([checked_vector(f.vector) for f in faces])
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
                        schema.INSERT_FACE, [schema.face_row(coll, f, vectors[i]) for i, f in enumerate(faces)]
                    )
                    seqs = [r[0] for r in db.execute("SELECT seq FROM faces WHERE seq > ? ORDER BY seq", (base,))]
                    if len(seqs) != len(faces):  # impossible with one writer; never index under wrong keys
                        raise RuntimeError("faces.seq allocation is not contiguous")
                    users = {f.user_id for f in faces if f.user_id is not None}
                    schema.refresh_user_status(db, coll, users)
            except sqlite3.IntegrityError:
                raise InvalidParameterException("a face id already exists in this collection") from None
            # Durable from here on; now make it searchable.
            keys = np.asarray(seqs, dtype=np.uint64)

            def add(ci: CollectionIndex) -> None:
                ci.index.add(keys, vectors)
                ci.face_seq = max(ci.face_seq, int(keys[-1]))
                ci.unsaved += len(keys)

            self._mutate_index(coll, add)

    def _mutate_index(self, coll: int, mutate: Callable[[CollectionIndex], None]) -> None:
        """Apply an index change after its SQLite commit; on failure, reload the index from SQLite."""
        ci = self._index_for(coll)
        use_threads(self.faiss_threads)
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

    def get_faces(self, collection_id: str, face_ids: Iterable[str]) -> dict[str, FaceRecord]:
        coll = self._coll(collection_id)
        ids = list(dict.fromkeys(face_ids))
        db = self._reader()
        out: dict[str, FaceRecord] = {}
        for chunk in chunks(ids):
            rows = db.execute(
                f"SELECT {schema.FACE_COLUMNS} FROM faces WHERE coll = ? AND face_id IN ({marks(len(chunk))})",
                (coll, *chunk),
            )
            for row in rows:
                out[row[1]] = schema.face_from_row(row)
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
        sql = f"SELECT {schema.FACE_COLUMNS} FROM faces WHERE coll = ?"
        args: list[Any] = [coll]
        if after is not None:
            sql += " AND face_id > ?"
            args.append(after)
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        sql += " ORDER BY face_id LIMIT ?"
        args.append(int(limit))
        return [schema.face_from_row(r) for r in self._reader().execute(sql, args)]

    def delete_faces(self, collection_id: str, face_ids: Iterable[str]) -> list[str]:
        ids = list(dict.fromkeys(face_ids))
        with self._write_lock:
            coll = self._coll(collection_id)
            if not ids:
                return []
            with self._transaction() as db:
                found: dict[str, tuple[int, str | None]] = {}
                for chunk in chunks(ids):
                    for seq, face_id, user in db.execute(
                        f"SELECT seq, face_id, user_id FROM faces WHERE coll = ? AND face_id IN ({marks(len(chunk))})",
                        (coll, *chunk),
                    ):
                        found[face_id] = (seq, user)
                if not found:
                    return []
                seqs = [seq for seq, _ in found.values()]
                for chunk in chunks(seqs):
                    db.execute(f"DELETE FROM faces WHERE seq IN ({marks(len(chunk))})", chunk)
                db.executemany("INSERT INTO face_ops (coll, face_seq) VALUES (?, ?)", [(coll, s) for s in seqs])
                op_seq = int(db.execute("SELECT MAX(op_seq) FROM face_ops WHERE coll = ?", (coll,)).fetchone()[0])
                schema.refresh_user_status(db, coll, {u for _, u in found.values() if u is not None})
            keys = np.asarray(seqs, dtype=np.uint64)

            def remove(ci: CollectionIndex) -> None:
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
        saved = SavedFile.parse(ci.file) if ci.file is not None else None
        if saved is not None and lowest_seq <= saved.face_seq and ci.unsaved:
            self._save_index(ci)
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def count_faces(self, collection_id: str) -> int:
        coll = self._coll(collection_id)
        return int(self._reader().execute("SELECT COUNT(*) FROM faces WHERE coll = ?", (coll,)).fetchone()[0])

    def purge_deleted(self, collection_id: str, *, timeout: float = 300.0) -> dict[str, Any]:
        """Nothing is left to purge: ``delete_faces`` already erased the descriptors from every file."""
        self._coll(collection_id)
        return {"backend": "embedded", "purged": True, "note": "delete_faces erases descriptors at once"}

    # -- search: the candidate methods of base.VectorStore.search --------------------------------------
    @contextlib.contextmanager
    def _search_scope(self, collection_id: str) -> Iterator[_SearchScope]:
        ci = self._index_for(self._coll(collection_id))
        use_threads(self.faiss_threads)
        with ci.lock.read():
            if ci.closed:
                raise ResourceNotFoundException(f"The collection id: {collection_id} does not exist")
            yield _SearchScope(ci, use_ivf=len(ci.index) >= self.exact_below)

    def _candidate_cap(self, scope: _SearchScope) -> int:
        return scope.size  # a round that asks for every face is an exhaustive scan

    def _candidates(self, scope: _SearchScope, query: np.ndarray, count: int, k: int, limit: float) -> Candidates:
        """From ``exact_below`` faces on, the IVF's candidates (its recall decides; re-scored exactly); below
        it, or when the probed lists held fewer faces than asked for, an exact float32 scan of ``count``."""
        if scope.use_ivf:
            scope.use_ivf = False  # a wider round would get no more from the same lists: scan instead
            keys = scope.ci.index.candidates(query, max(count, self.refine), self.probe_fraction)
            if keys is not None and len(keys) >= count:
                return Candidates(keys, final=True)
        keys, squared = scope.ci.index.scan(query, count)
        return Candidates(keys, approx=np.sqrt(np.maximum(squared.astype(np.float64), 0.0)))

    def _candidate_vectors(self, scope: _SearchScope, keys: np.ndarray) -> np.ndarray:
        return scope.ci.index.get(keys)  # the float32 vectors SQLite holds, bit for bit; no SQLite read

    def _hit_faces(self, scope: _SearchScope, keys: np.ndarray) -> dict[Any, FaceRecord]:
        return schema.faces_by_seq(self._reader(), scope.ci.coll, keys.tolist())

    # -- users ---------------------------------------------------------------------------------------
    def create_user(self, collection_id: str, user: UserRecord) -> None:
        with self._write_lock:
            coll = self._coll(collection_id)
            try:
                with self._transaction() as db:
                    db.execute(
                        "INSERT INTO users (coll, user_id, created_at, status) VALUES (?, ?, ?, ?)",
                        (coll, user.user_id, user.created_at.isoformat(), user.status),
                    )
                    schema.refresh_user_status(db, coll, [user.user_id])
            except sqlite3.IntegrityError:
                raise ResourceAlreadyExistsException(f"The user id: {user.user_id} already exists") from None

    def get_user(self, collection_id: str, user_id: str) -> UserRecord | None:
        coll = self._coll(collection_id)
        row = (
            self._reader()
            .execute(f"SELECT {schema.USER_COLUMNS} FROM users WHERE coll = ? AND user_id = ?", (coll, user_id))
            .fetchone()
        )
        return None if row is None else schema.user_from_row(row)

    def list_users(self, collection_id: str, *, after: str | None = None, limit: int = 1000) -> list[UserRecord]:
        coll = self._coll(collection_id)
        if limit <= 0:
            return []
        rows = self._reader().execute(
            f"SELECT {schema.USER_COLUMNS} FROM users WHERE coll = ? AND user_id > ? ORDER BY user_id LIMIT ?",
            (coll, "" if after is None else after, int(limit)),
        )
        return [schema.user_from_row(r) for r in rows]

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
                for chunk in chunks(ids):
                    touched.update(
                        u
                        for (u,) in db.execute(
                            f"SELECT DISTINCT user_id FROM faces WHERE coll = ? AND user_id IS NOT NULL"
                            f" AND face_id IN ({marks(len(chunk))})",
                            (coll, *chunk),
                        )
                    )
                    db.execute(
                        f"UPDATE faces SET user_id = ? WHERE coll = ? AND face_id IN ({marks(len(chunk))})",
                        (user_id, coll, *chunk),
                    )
                schema.refresh_user_status(db, coll, touched)

    # -- index files ---------------------------------------------------------------------------------
    def _index_for(self, coll: int) -> CollectionIndex:
        ci = self._indexes.get(coll)
        if ci is not None:
            return ci
        with self._write_lock:  # loading reads SQLite consistently and may save
            ci = self._indexes.get(coll)
            if ci is None:
                if coll not in self._coll_ids.values():  # deleted meanwhile: don't resurrect an index
                    raise ResourceNotFoundException("The collection does not exist")
                use_threads(self.faiss_threads)
                ci, save = self._files.load(self._db, coll, self.checkpoint_every)
                if save:
                    self._save_index(ci)
                with self._indexes_lock:
                    self._indexes[coll] = ci
            return ci

    def _save_index(self, ci: CollectionIndex) -> None:
        """Write the index atomically and prune the deletions it already reflects; holds ``_write_lock``."""
        with self._write_lock, ci.lock.read():
            if ci.closed:
                return
            op_seq = self._files.write(ci)
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
            "faiss_threads": self.faiss_threads,
            "train_threads": self.train_threads,
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
        self._dir_lock.release()
