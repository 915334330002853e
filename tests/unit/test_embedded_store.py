"""EmbeddedStore specifics the contract suite does not cover: the IVF life cycle, threads, input checks."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from face_records import T0
from face_records import face_records as faces

from facesearch.errors import InvalidParameterException
from facesearch.store.embedded import EmbeddedStore
from facesearch.store.records import DIMENSION, CollectionRecord


@pytest.fixture
def store(tmp_path: Path):
    with EmbeddedStore(tmp_path, exact_below=0) as s:
        s.create_collection(CollectionRecord("c", T0, "test"))
        yield s


def clustered(n: int, seed: int) -> np.ndarray:
    """Faces of n // 3 identities, roughly as far apart as real descriptors (0.4 within, 0.9 between),
    with identity centres spread over few directions as real ones are (~24 effective dimensions of 128)."""
    rng = np.random.default_rng(seed)
    spread = (np.arange(DIMENSION) + 1.0) ** -1.0
    spread *= 0.9 / np.sqrt(2 * spread.sum())
    people = max(n // 3, 1)
    centres = rng.normal(0, 1, (people, DIMENSION)) * np.sqrt(spread)
    return (centres[rng.integers(0, people, n)] + rng.normal(0, 0.4 / 16, (n, DIMENSION))).astype(np.float32)


def test_the_ivf_is_trained_at_exact_below_and_retrained_as_the_collection_grows(tmp_path: Path) -> None:
    vectors = clustered(9000, 1)
    with EmbeddedStore(tmp_path, exact_below=2000) as store:
        store.create_collection(CollectionRecord("c", T0, "test"))
        seen = []
        for b in range(0, 9000, 1000):
            store.add_faces("c", faces(vectors[b : b + 1000], b))
            stats = store.index_stats("c")
            seen.append((stats["size"], stats["nlist"], stats["trained_size"]))
        # 1,000 faces: exact scan only; 2,000: trained with n/64 → 16 lists; doubled lists at 4,096 and 8,192.
        assert seen[:2] == [(1000, 0, 0), (2000, 16, 2000)]
        assert seen[4] == (5000, 64, 5000) and seen[8] == (9000, 128, 9000)
    with EmbeddedStore(tmp_path, exact_below=2000) as store:  # the trained IVF is saved and reloaded as it was
        assert (store.index_stats("c")["nlist"], store.index_stats("c")["trained_size"]) == (128, 9000)


@pytest.mark.parametrize(("probe_fraction", "min_recall"), [(0.25, 0.90), (1.0, 0.99)])
def test_ivf_search_returns_the_exact_neighbours_it_finds_with_exact_distances(
    tmp_path: Path, probe_fraction: float, min_recall: float
) -> None:
    # The faces beyond a person's own photos are strangers spread thinly around the query; 10,000 queries on 1M
    # faces shaped like real descriptors give recall@10 ≥ 0.99 at the default probes (BENCHMARKS.md).
    vectors = clustered(12_000, 2)
    queries = clustered(30, 3)  # people not in the gallery: their 10 nearest are all strangers
    with EmbeddedStore(tmp_path, exact_below=0, probe_fraction=probe_fraction) as store:
        store.create_collection(CollectionRecord("c", T0, "test"))
        store.add_faces("c", faces(vectors))
        assert store.index_stats("c")["nlist"] == 128
        found = 0
        for q in queries:
            exact = np.linalg.norm(vectors.astype(np.float64) - q.astype(np.float64), axis=1)
            truth = {f"face-{i:06d}" for i in np.argsort(exact)[:10]}
            hits = store.search("c", q, k=10)
            assert len(hits) == 10
            for h in hits:  # whatever the IVF proposes is re-scored with the true distance
                assert h.distance == pytest.approx(exact[int(h.face.face_id[5:])], abs=1e-12)
            found += len(truth & {h.face.face_id for h in hits})
        assert found >= min_recall * 10 * len(queries)


def test_every_face_is_found_by_its_own_descriptor_even_near_the_mean_face(tmp_path: Path) -> None:
    # Blurry, generic faces drift towards the mean face. In an HNSW graph (the store's first design) such hubs
    # left whole clusters unreachable; in an IVF every face sits in the list of its nearest centroid, which
    # a query with the same descriptor always probes first.
    vectors = clustered(12_000, 4)
    vectors[::25] = vectors[::25] * 0.3 + vectors.mean(0) * 0.7
    with EmbeddedStore(tmp_path, exact_below=0) as store:
        store.create_collection(CollectionRecord("c", T0, "test"))
        store.add_faces("c", faces(vectors))
        for i in range(0, 12_000, 11):
            [hit] = store.search("c", vectors[i], k=1)
            assert (hit.face.face_id, hit.distance) == (f"face-{i:06d}", 0.0)


def test_probe_fraction_is_validated_and_changes_live(store: EmbeddedStore) -> None:
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(InvalidParameterException):
            store.set_probe_fraction(bad)
    store.set_probe_fraction(0.5)
    assert store.index_stats("c")["probe_fraction"] == 0.5


def test_readers_run_concurrently_with_writers(store: EmbeddedStore) -> None:
    rng = np.random.default_rng(5)
    base = rng.normal(0, 0.05, (2000, DIMENSION)).astype(np.float32)
    store.add_faces("c", faces(base))
    errors: list[BaseException] = []
    stop = threading.Event()

    searches = misses = 0

    def reader(seed: int) -> None:
        nonlocal searches, misses
        r = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                i = int(r.integers(0, 500))  # faces 0-499 are never deleted
                hits = store.search("c", base[i], k=5)
                searches += 1
                misses += (hits[0].face.face_id, hits[0].distance) != (f"face-{i:06d}", 0.0)
                assert [h.distance for h in hits] == sorted(h.distance for h in hits)
                assert store.get_faces("c", [f"face-{i:06d}"])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    try:
        for b in range(10):
            store.add_faces("c", faces(rng.normal(0, 0.05, (100, DIMENSION)).astype(np.float32), 10_000 + 100 * b))
            store.delete_faces("c", [f"face-{i:06d}" for i in range(500 + 20 * b, 520 + 20 * b)])
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors[0]
    assert searches > 50 and misses == 0  # while the IVF is retrained twice under the readers
    assert store.count_faces("c") == 2000 + 1000 - 200 == store.index_stats("c")["size"]


@pytest.mark.parametrize("faiss_threads", [1, 2, None])
def test_faiss_runs_on_the_configured_threads_in_whichever_thread_calls_the_store(
    tmp_path: Path, faiss_threads: int | None
) -> None:
    # OpenMP keeps its thread count per thread: a setting made once in the main thread would not reach the
    # threads that serve requests, so the store applies it in the calling thread on every faiss call.
    import faiss

    from facesearch.store.embedded.vector_index import cpu_count

    expected = cpu_count() if faiss_threads is None else faiss_threads
    vectors = np.random.default_rng(8).normal(0, 0.05, (40, DIMENSION)).astype(np.float32)
    seen: dict[str, int] = {}
    with EmbeddedStore(tmp_path, exact_below=0, faiss_threads=faiss_threads) as store:
        store.create_collection(CollectionRecord("c", T0, "test"))
        calls = {
            "add_faces": lambda: store.add_faces("c", faces(vectors)),  # trains the IVF (k-means)
            "search": lambda: store.search("c", vectors[3], k=5),
            "delete_faces": lambda: store.delete_faces("c", ["face-000004"]),
        }

        def call(name: str) -> None:
            faiss.omp_set_num_threads(7)  # whatever this thread ran with before
            calls[name]()
            seen[name] = faiss.omp_get_max_threads()

        for name in calls:
            worker = threading.Thread(target=call, args=(name,))
            worker.start()
            worker.join(timeout=60)
        assert store.index_stats("c")["faiss_threads"] == faiss_threads
    assert seen == dict.fromkeys(calls, expected)
    with pytest.raises(InvalidParameterException):
        EmbeddedStore(tmp_path / "other", faiss_threads=0)


def test_large_ivf_trainings_run_on_train_threads_and_small_ones_on_the_callers_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faiss

    from facesearch.store.embedded import vector_index

    during: list[tuple[int, int]] = []
    train_now = vector_index.CollectionVectorIndex._train_now

    def recording(self: vector_index.CollectionVectorIndex) -> None:
        during.append((len(self), faiss.omp_get_max_threads()))
        train_now(self)

    monkeypatch.setattr(vector_index.CollectionVectorIndex, "_train_now", recording)
    monkeypatch.setattr(vector_index, "PARALLEL_TRAIN_MIN", 64)  # "large" from 64 faces, to keep the test small
    vectors = np.random.default_rng(9).normal(0, 0.05, (200, DIMENSION)).astype(np.float32)
    with EmbeddedStore(tmp_path, exact_below=0, faiss_threads=1, train_threads=2) as store:
        store.create_collection(CollectionRecord("c", T0, "test"))
        store.add_faces("c", faces(vectors[:20]))  # trains at 20 faces: small
        store.add_faces("c", faces(vectors[20:200], 20))  # 200 faces: 2 lists instead of 1, retrained: large
        assert faiss.omp_get_max_threads() == 1  # the calling thread's setting is back
    assert during == [(20, 1), (200, 2)]


def test_periodic_checkpoints_keep_the_saved_index_close_behind(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path, checkpoint_every=250) as store:
        store.create_collection(CollectionRecord("c", T0, "test"))
        vectors = np.random.default_rng(6).normal(0, 0.05, (1000, DIMENSION)).astype(np.float32)
        for b in range(10):
            store.add_faces("c", faces(vectors[b * 100 : (b + 1) * 100], b * 100))
        stats = store.index_stats("c")
        assert stats["file"] is not None and stats["unsaved"] < 250
        assert len(list((tmp_path / "indexes").iterdir())) == 1


@pytest.mark.parametrize(
    "vector",
    [np.zeros(127, np.float32), np.zeros((1, 128), np.float32), np.full(128, np.nan, np.float32)],
    ids=["short", "2d", "nan"],
)
def test_malformed_vectors_are_rejected(store: EmbeddedStore, vector: np.ndarray) -> None:
    with pytest.raises(InvalidParameterException):
        store.add_faces("c", faces([vector]))
    with pytest.raises(InvalidParameterException):
        store.search("c", vector, k=1)
    assert store.count_faces("c") == 0


def test_bad_search_arguments_and_duplicate_face_ids_are_rejected(store: EmbeddedStore) -> None:
    v = np.zeros(DIMENSION, np.float32)
    store.add_faces("c", faces(v[None]))
    with pytest.raises(InvalidParameterException):
        store.search("c", v, k=0)
    with pytest.raises(InvalidParameterException):
        store.search("c", v, k=1, max_distance=-1.0)
    with pytest.raises(InvalidParameterException):
        store.add_faces("c", faces(v[None]))  # face-000000 exists
    assert store.count_faces("c") == 1 == store.index_stats("c")["size"]


def test_float64_vectors_are_stored_as_float32(store: EmbeddedStore) -> None:
    v = np.random.default_rng(7).normal(0, 0.05, DIMENSION)
    store.add_faces("c", faces(v[None]))
    got = store.get_faces("c", ["face-000000"])["face-000000"].vector
    assert got.dtype == np.float32 and got.tobytes() == v.astype(np.float32).tobytes()


def test_a_store_from_before_per_collection_budgets_opens_and_gains_the_column(tmp_path: Path) -> None:
    """Existing deployments keep their data: the collections table gets ``false_candidate_budget`` on open."""
    import sqlite3

    from facesearch.store.embedded.schema import DB_NAME

    with EmbeddedStore(tmp_path) as store:
        store.create_collection(CollectionRecord("old", T0, "v1", 90.0, True))
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute("ALTER TABLE collections DROP COLUMN false_candidate_budget")
    db.commit()
    db.close()
    with EmbeddedStore(tmp_path) as store:
        assert store.get_collection("old").false_candidate_budget is None
        store.update_collection(CollectionRecord("old", T0, "v1", 90.0, True, 0.5))
        assert store.get_collection("old").false_candidate_budget == 0.5
