"""The embedded store's SQLite side: schema, connection settings, rows ↔ records, batched statements.

SQLite is the source of truth (the vector index files are a cache rebuilt from it). Every connection runs
WAL with ``synchronous=FULL`` (a committed write survives power loss) and ``secure_delete`` (freed pages are
zeroed, so a deleted descriptor does not linger in the database file).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from facesearch.store.records import DIMENSION, CollectionRecord, FaceRecord, UserRecord

DB_NAME = "facesearch.sqlite3"
SCHEMA_VERSION = "1"
CHUNK = 500  # ids per "IN (...)" statement
_STREAM_CHUNK = 50_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    face_model_version TEXT NOT NULL,
    threshold_floor REAL NOT NULL,
    review_required INTEGER NOT NULL,
    false_candidate_budget REAL
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

FACE_COLUMNS = (
    "seq, face_id, image_id, external_image_id, user_id, source, confidence, indexed_at, bounding_box, quality, vector"
)
COLLECTION_COLUMNS = (
    "collection_id, created_at, face_model_version, threshold_floor, review_required, false_candidate_budget"
)
USER_COLUMNS = "user_id, created_at, status"


def connect(directory: Path) -> sqlite3.Connection:
    """A connection to the store's database with the durability settings above (autocommit mode: the
    store opens its transactions explicitly)."""
    conn = sqlite3.connect(directory / DB_NAME, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def initialise(db: sqlite3.Connection) -> dict[str, int]:
    """Create the tables if needed; returns collection id → internal number."""
    db.executescript(SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(collections)")}
    if "false_candidate_budget" not in columns:  # a store created before per-collection budgets
        db.execute("ALTER TABLE collections ADD COLUMN false_candidate_budget REAL")
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
    return dict(db.execute("SELECT collection_id, id FROM collections"))


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def marks(n: int) -> str:
    return ",".join("?" * n)


# -- rows ↔ records --------------------------------------------------------------------------------------
def collection_row(record: CollectionRecord) -> tuple[Any, ...]:
    return (
        record.collection_id,
        record.created_at.isoformat(),
        record.face_model_version,
        float(record.threshold_floor),
        int(record.review_required),
        None if record.false_candidate_budget is None else float(record.false_candidate_budget),
    )


def collection_from_row(row: tuple[Any, ...]) -> CollectionRecord:
    return CollectionRecord(
        collection_id=row[0],
        created_at=datetime.fromisoformat(row[1]),
        face_model_version=row[2],
        threshold_floor=row[3],
        review_required=bool(row[4]),
        false_candidate_budget=row[5],
    )


def face_row(coll: int, face: FaceRecord, vector: np.ndarray) -> tuple[Any, ...]:
    """The ``faces`` row of ``face`` (without seq); ``vector`` is its checked little-endian float32 copy."""
    return (
        coll,
        face.face_id,
        face.image_id,
        face.external_image_id,
        face.user_id,
        face.source,
        float(face.confidence),
        face.indexed_at.isoformat(),
        json.dumps(face.bounding_box),
        json.dumps(face.quality),
        vector.tobytes(),
    )


INSERT_FACE = (
    "INSERT INTO faces (coll, face_id, image_id, external_image_id, user_id, source, confidence,"
    " indexed_at, bounding_box, quality, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def face_from_row(row: tuple[Any, ...]) -> FaceRecord:
    """A FaceRecord from a row of ``FACE_COLUMNS``."""
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
        vector=np.frombuffer(row[10], dtype="<f4"),
    )


def user_from_row(row: tuple[Any, ...]) -> UserRecord:
    return UserRecord(user_id=row[0], created_at=datetime.fromisoformat(row[1]), status=row[2])


# -- statements shared by several operations -------------------------------------------------------------
def refresh_user_status(db: sqlite3.Connection, coll: int, user_ids: Iterable[str]) -> None:
    """Set each user's status from whether any face carries it (ACTIVE) or none does (CREATED)."""
    users = sorted(set(user_ids))
    for chunk in chunks(users):
        db.execute(
            "UPDATE users SET status = CASE WHEN EXISTS (SELECT 1 FROM faces f WHERE f.coll = users.coll"
            " AND f.user_id = users.user_id) THEN 'ACTIVE' ELSE 'CREATED' END"
            f" WHERE coll = ? AND user_id IN ({marks(len(chunk))})",
            (coll, *chunk),
        )


def faces_by_seq(db: sqlite3.Connection, coll: int, seqs: Sequence[int]) -> dict[int, FaceRecord]:
    """The faces with these ``seq`` keys; deleted ones are absent."""
    out: dict[int, FaceRecord] = {}
    for chunk in chunks(seqs):
        rows = db.execute(
            f"SELECT {FACE_COLUMNS} FROM faces WHERE coll = ? AND seq IN ({marks(len(chunk))})", (coll, *chunk)
        )
        out.update((int(r[0]), face_from_row(r)) for r in rows)
    return out


def stream_vectors(db: sqlite3.Connection, coll: int, after: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(seqs, float32 vectors) of the collection's faces with ``seq > after``, in seq order, in large chunks."""
    cur = db.execute("SELECT seq, vector FROM faces WHERE coll = ? AND seq > ? ORDER BY seq", (coll, after))
    while rows := cur.fetchmany(_STREAM_CHUNK):
        seqs = np.fromiter((r[0] for r in rows), dtype=np.uint64, count=len(rows))
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), DIMENSION)
        yield seqs, vectors
