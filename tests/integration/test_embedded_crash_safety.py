"""EmbeddedStore survives kill -9, lost or corrupt index files, and reopening.

The crash test runs this file as a child process (``python test_embedded_crash_safety.py STORE_DIR``) that
indexes batches, deletes a few faces now and then, and prints a line for every acknowledged write. The
parent SIGKILLs it mid-way, reopens the store and checks that exactly the acknowledged state is there
(plus, at most, the one write in flight, all or nothing) and that the index agrees with SQLite.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from facesearch.store.embedded import EmbeddedStore
from facesearch.store.records import DIMENSION, CollectionRecord, FaceRecord, UserRecord

BATCH = 100
CID = "crash"
T0 = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def fid(batch: int, j: int) -> str:
    return str(uuid.UUID(int=(batch << 32) | j))


def batch_vectors(batch: int) -> np.ndarray:
    return np.random.default_rng(batch).normal(0, 0.05, (BATCH, DIMENSION)).astype(np.float32)


def batch_faces(batch: int) -> list[FaceRecord]:
    vectors = batch_vectors(batch)
    return [
        FaceRecord(
            face_id=fid(batch, j),
            image_id=f"img-{batch}",
            vector=vectors[j],
            bounding_box={"Width": 0.5, "Height": 0.5, "Left": 0.25, "Top": 0.25},
            confidence=99.0,
            indexed_at=T0,
        )
        for j in range(BATCH)
    ]


def deleted_by(batch: int) -> list[str]:
    """After batch b (b % 3 == 2) is acknowledged the child deletes two faces of batch b - 2."""
    return [fid(batch - 2, 0), fid(batch - 2, 1)] if batch % 3 == 2 else []


def collection() -> CollectionRecord:
    return CollectionRecord(collection_id=CID, created_at=T0, face_model_version="test")


def child(store_dir: str) -> None:
    store = EmbeddedStore(Path(store_dir), checkpoint_every=500)
    store.create_collection(collection())
    print("READY", flush=True)
    for b in range(100_000):
        store.add_faces(CID, batch_faces(b))
        print(f"ACK {b}", flush=True)
        if gone := deleted_by(b):
            store.delete_faces(CID, gone)
            print(f"DEL {b}", flush=True)


def run_and_kill(store_dir: Path, kill_after_acks: int) -> tuple[list[int], list[int]]:
    """Start the child, SIGKILL it once it acknowledged ``kill_after_acks`` batches; acked adds/deletes."""
    proc = subprocess.Popen(
        [sys.executable, __file__, str(store_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("ACK") and sum(x.startswith("ACK") for x in lines) >= kill_after_acks:
                os.kill(proc.pid, signal.SIGKILL)
                break
        else:
            pytest.fail(f"child ended early: {proc.stderr.read() if proc.stderr else ''}")
        rest, _ = proc.communicate(timeout=30)  # lines printed before the kill are acknowledged too
        lines.extend(x.strip() for x in rest.splitlines())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    acked = [int(x.split()[1]) for x in lines if x.startswith("ACK")]
    dels = [int(x.split()[1]) for x in lines if x.startswith("DEL")]
    return acked, dels


@pytest.mark.parametrize("kill_after_acks", [3, 13])
def test_sigkill_while_indexing_loses_nothing_acknowledged(tmp_path: Path, kill_after_acks: int) -> None:
    store_dir = tmp_path / "store"
    acked, dels = run_and_kill(store_dir, kill_after_acks)
    assert acked == list(range(len(acked))) and len(acked) >= kill_after_acks
    last = acked[-1]

    must_exist = {fid(b, j) for b in acked for j in range(BATCH)} - {i for b in dels for i in deleted_by(b)}
    # What may have committed without its acknowledgement being printed: the next add, or the delete
    # that follows the last acknowledged add.
    in_flight_add = {fid(last + 1, j) for j in range(BATCH)}
    in_flight_delete = set() if last in dels else set(deleted_by(last))
    never = {i for b in dels for i in deleted_by(b)}

    with EmbeddedStore(store_dir) as store:  # opens cleanly
        stats = store.index_stats(CID)
        present = {f.face_id for f in store.list_faces(CID, limit=100_000)}
        assert present >= must_exist - in_flight_delete
        assert not present & never
        assert present - must_exist in (set(), in_flight_add)  # a batch is all or nothing
        assert in_flight_delete & present in (set(), in_flight_delete)
        assert store.count_faces(CID) == len(present)
        assert stats["size"] == len(present), stats  # the index agrees with SQLite

        vectors = {fid(b, j): v for b in range(last + 2) for j, v in enumerate(batch_vectors(b))}
        for face_id in present:
            [hit] = store.search(CID, vectors[face_id], k=1)
            assert (hit.face.face_id, hit.distance) == (face_id, 0.0)
        for face_id in never:
            assert store.search(CID, vectors[face_id], k=1)[0].face.face_id != face_id

        # The store keeps working after recovery.
        store.add_faces(CID, batch_faces(10_000))
        assert store.search(CID, batch_vectors(10_000)[7], k=1)[0].face.face_id == fid(10_000, 7)
    with EmbeddedStore(store_dir) as store:
        assert store.count_faces(CID) == len(present) + BATCH
        assert store.index_stats(CID)["loaded_from"] == "file"


# -- in-process recovery -------------------------------------------------------------------------------------
def build(store_dir: Path, batches: int, **options: object) -> EmbeddedStore:
    store = EmbeddedStore(store_dir, **options)  # type: ignore[arg-type]
    store.create_collection(collection())
    for b in range(batches):
        store.add_faces(CID, batch_faces(b))
    return store


def snapshot(store: EmbeddedStore, queries: np.ndarray) -> list[list[tuple[str, float]]]:
    return [[(h.face.face_id, h.distance) for h in store.search(CID, q, k=10)] for q in queries]


QUERIES = np.random.default_rng(1234).normal(0, 0.05, (25, DIMENSION)).astype(np.float32)


def index_files(store_dir: Path) -> list[Path]:
    return sorted((store_dir / "indexes").glob("*.vidx"))


def test_reopen_after_close_restores_everything_from_the_saved_index(tmp_path: Path) -> None:
    store = build(tmp_path, 12)
    store.delete_faces(CID, [fid(3, j) for j in range(10)])
    store.create_user(CID, UserRecord("u1", T0))
    store.set_face_user(CID, [fid(5, 5)], "u1")
    before = snapshot(store, QUERIES)
    store.close()

    with EmbeddedStore(tmp_path) as store:
        stats = store.index_stats(CID)
        assert (stats["loaded_from"], stats["caught_up"], stats["size"]) == ("file", 0, 12 * BATCH - 10)
        assert snapshot(store, QUERIES) == before
        assert store.get_user(CID, "u1").status == "ACTIVE"
        assert store.get_faces(CID, [fid(5, 5)])[fid(5, 5)].user_id == "u1"
        assert store.get_faces(CID, [fid(3, 0)]) == {}


def test_unsaved_changes_are_caught_up_from_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = build(tmp_path / "live", 5, checkpoint_every=10**9)
    store.checkpoint()  # index file holds batches 0-4
    for b in range(5, 8):
        store.add_faces(CID, batch_faces(b))
    # The crash comes after the deletion's commit, before DeleteFaces rewrote the index file.
    monkeypatch.setattr(EmbeddedStore, "_erase_from_disk", lambda self, coll, lowest_seq: None)
    store.delete_faces(CID, [fid(1, j) for j in range(20)] + [fid(6, j) for j in range(5)])
    expected = snapshot(store, QUERIES)
    # The directory as a kill -9 would leave it: committed SQLite (WAL) + the older index file.
    shutil.copytree(tmp_path / "live", tmp_path / "crashed")
    store.close()

    with EmbeddedStore(tmp_path / "crashed") as crashed:
        stats = crashed.index_stats(CID)
        assert stats["loaded_from"] == "file"
        assert stats["caught_up"] == 20 + 3 * BATCH - 5  # 20 removed from the file's faces, 295 added
        assert stats["size"] == 8 * BATCH - 25 == crashed.count_faces(CID)
        assert snapshot(crashed, QUERIES) == expected


def test_a_trained_ivf_is_saved_reloaded_and_caught_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # exact_below=0: the IVF answers every search, so its file, its reload and its catch-up (removals from
    # the lists, additions that retrain it as the collection grows) are what is tested here.
    store = build(tmp_path / "live", 6, exact_below=0, checkpoint_every=10**9)
    trained = store.index_stats(CID)
    store.close()
    with EmbeddedStore(tmp_path / "live", exact_below=0) as reopened:  # the same IVF, not a retrained one
        stats = reopened.index_stats(CID)
        assert (stats["loaded_from"], stats["nlist"], stats["trained_size"]) == (
            "file",
            trained["nlist"],
            trained["trained_size"],
        )
        reopened.checkpoint()
        for b in range(6, 12):  # 600 → 1,200 faces: more lists, so the catch-up retrains
            reopened.add_faces(CID, batch_faces(b))
        gone = [fid(b, j) for b in (0, 7) for j in range(10)]
        monkeypatch.setattr(EmbeddedStore, "_erase_from_disk", lambda self, coll, lowest_seq: None)  # crash first
        reopened.delete_faces(CID, gone)
        shutil.copytree(tmp_path / "live", tmp_path / "crashed")  # as kill -9 would leave it

    with EmbeddedStore(tmp_path / "crashed", exact_below=0) as crashed:
        stats = crashed.index_stats(CID)
        # 10 removals from the file's faces + 590 rows added after it (batch 7's deleted 10 are never added)
        assert stats["loaded_from"] == "file" and stats["caught_up"] == 10 + 6 * BATCH - 10
        assert stats["size"] == 12 * BATCH - 20 == crashed.count_faces(CID) and stats["nlist"] > trained["nlist"]
        for b in range(12):
            for j, v in enumerate(batch_vectors(b)[:12]):
                [hit] = crashed.search(CID, v, k=1)
                if fid(b, j) in gone:
                    assert hit.face.face_id != fid(b, j) and hit.distance > 0
                else:
                    assert (hit.face.face_id, hit.distance) == (fid(b, j), 0.0)


@pytest.mark.parametrize("damage", ["deleted", "truncated", "flipped", "garbage", "stale"])
def test_a_missing_or_corrupt_index_is_rebuilt_from_sqlite(tmp_path: Path, damage: str) -> None:
    build(tmp_path, 10).close()
    with EmbeddedStore(tmp_path) as store:
        store.delete_faces(CID, [fid(2, j) for j in range(7)])
        expected = snapshot(store, QUERIES)  # exact scan (under exact_below faces)
    [file] = index_files(tmp_path)

    if damage == "deleted":
        file.unlink()
    elif damage == "truncated":
        data = file.read_bytes()
        file.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":
        data = bytearray(file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        file.write_bytes(bytes(data))
    elif damage == "garbage":
        file.write_bytes(os.urandom(4096))
    elif damage == "stale":  # a valid index file of other content under this file's name
        build(tmp_path / "other", 3).close()
        [other_file] = index_files(tmp_path / "other")
        shutil.copy(other_file, file)

    with EmbeddedStore(tmp_path, exact_below=0, probe_fraction=1.0) as store:  # IVF over the rebuilt index
        stats = store.index_stats(CID)
        assert stats["loaded_from"] == "rebuilt" and stats["nlist"] > 1
        assert stats["size"] == 10 * BATCH - 7 == store.count_faces(CID)
        # Every list probed and the best 300 of 993 product-code distances re-scored exactly: the top 10 are
        # the exact ones unless the 4-bit codes rank a true neighbour below 300 others (judged over all queries).
        found = 0
        for got, want in zip(snapshot(store, QUERIES), expected, strict=True):
            assert len(got) == 10 and [d for _, d in got] == sorted(d for _, d in got)
            found += len(set(got) & set(want))
        assert found >= 0.98 * 10 * len(expected)
    with EmbeddedStore(tmp_path) as store:  # the rebuilt index was saved, and the exact scan agrees
        assert store.index_stats(CID)["loaded_from"] == "file"
        assert snapshot(store, QUERIES) == expected
    assert len(index_files(tmp_path)) == 1


def test_leftovers_of_an_interrupted_save_and_of_deleted_collections_are_removed(tmp_path: Path) -> None:
    store = build(tmp_path, 2)
    store.close()
    leftovers = [
        tmp_path / "indexes" / "c1-0123abcd.tmp",  # a save interrupted before its rename
        tmp_path / "indexes" / "c99-f1-o0-00000000.vidx",  # a collection whose deletion was committed
        tmp_path / "indexes" / "c1-f200-o0-00000000.usearch",  # the HNSW file of an earlier version
    ]
    for p in leftovers:
        p.write_bytes(b"partial")
    with EmbeddedStore(tmp_path) as store:
        assert store.index_stats(CID)["loaded_from"] == "file"
        assert not any(p.exists() for p in leftovers)
        store.delete_collection(CID)
        assert index_files(tmp_path) == []


def test_a_second_open_of_the_same_directory_is_refused(tmp_path: Path) -> None:
    from facesearch.errors import ResourceInUseException

    with EmbeddedStore(tmp_path), pytest.raises(ResourceInUseException):
        EmbeddedStore(tmp_path)
    EmbeddedStore(tmp_path).close()  # released on close


if __name__ == "__main__":
    child(sys.argv[1])
