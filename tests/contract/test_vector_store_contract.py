"""The VectorStore contract: one suite, every backend (see conftest.py's ``store`` fixture).

Read top to bottom it is the specification of src/facesearch/store/base.py, made precise:

* collections: create / get / update / list (by id) / delete (everything in it, for good), typed errors;
* faces: durable and searchable as soon as ``add_faces`` returns; every field round-trips (the vector
  bit-for-bit); ``search`` gives exact euclidean distances, nearest first, at most k, ``max_distance``
  inclusive and exact, ties broken by face_id; collections never see each other's faces; listing pages
  through every face exactly once in face_id order; deleted faces are gone everywhere;
* users: create / duplicate / get / list / delete (which clears the faces' user_id but keeps the faces),
  and status CREATED ↔ ACTIVE following whether any face is associated.

Vectors are deterministic: random ones from fixed seeds, and hand-made ones whose distances are exact in
float32 (sums of squares of dyadic rationals, e.g. the 3-4-5 triangle 0.375² + 0.5² = 0.625²).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from facesearch.errors import ResourceAlreadyExistsException, ResourceNotFoundException
from facesearch.store.base import VectorStore
from facesearch.store.records import DIMENSION, CollectionRecord, FaceRecord, UserRecord

T0 = datetime(2024, 5, 17, 9, 30, 12, 345678, tzinfo=UTC)
BOX = {"Width": 0.25, "Height": 0.5, "Left": 0.125, "Top": 0.0625}


# -- helpers ---------------------------------------------------------------------------------------------
def fid(i: int) -> str:
    """A deterministic UUID-shaped face id; fid(i) < fid(j) iff i < j."""
    return str(uuid.UUID(int=(i << 64) | 0x4000_8000_0000_0000))


def random_vectors(n: int, seed: int, scale: float = 0.05) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, (n, DIMENSION)).astype(np.float32)


def axis_vector(**coords: float) -> np.ndarray:
    """A vector that is zero except at the given axes, e.g. axis_vector(a0=0.375, a1=0.5)."""
    v = np.zeros(DIMENSION, dtype=np.float32)
    for name, value in coords.items():
        v[int(name[1:])] = value
    return v


def face(face_id: str, vector: np.ndarray, **fields: object) -> FaceRecord:
    base: dict[str, object] = {
        "image_id": f"img-{face_id[:8]}",
        "bounding_box": dict(BOX),
        "confidence": 99.5,
        "indexed_at": T0,
    }
    base.update(fields)
    return FaceRecord(face_id=face_id, vector=np.asarray(vector, dtype=np.float32), **base)  # type: ignore[arg-type]


def collection(collection_id: str, **fields: object) -> CollectionRecord:
    base: dict[str, object] = {"created_at": T0, "face_model_version": "dlib-resnet-v1"}
    base.update(fields)
    return CollectionRecord(collection_id=collection_id, **base)  # type: ignore[arg-type]


def user(user_id: str) -> UserRecord:
    return UserRecord(user_id=user_id, created_at=T0 + timedelta(seconds=1))


def exact_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b.astype(np.float64)))


def add_random(store: VectorStore, cid: str, n: int, seed: int, start: int = 0) -> dict[str, np.ndarray]:
    vectors = random_vectors(n, seed)
    faces = [face(fid(start + i), vectors[i]) for i in range(n)]
    store.add_faces(cid, faces)
    return {f.face_id: f.vector for f in faces}


def all_faces(store: VectorStore, cid: str, page: int = 1000, **kw: object) -> list[FaceRecord]:
    out: list[FaceRecord] = []
    after = None
    while True:
        batch = store.list_faces(cid, after=after, limit=page, **kw)  # type: ignore[arg-type]
        out.extend(batch)
        if len(batch) < page:
            return out
        after = batch[-1].face_id


@pytest.fixture
def cid(store: VectorStore) -> str:
    store.create_collection(collection("contract-a"))
    return "contract-a"


# -- collections -----------------------------------------------------------------------------------------
def test_create_then_get_returns_every_field(store: VectorStore) -> None:
    record = collection("c1", threshold_floor=92.5, review_required=False, face_model_version="m-7")
    store.create_collection(record)
    assert store.get_collection("c1") == record


def test_creating_an_existing_collection_raises_already_exists(store: VectorStore) -> None:
    store.create_collection(collection("c1"))
    with pytest.raises(ResourceAlreadyExistsException):
        store.create_collection(collection("c1", face_model_version="other"))
    assert store.get_collection("c1").face_model_version == "dlib-resnet-v1"


def test_getting_an_unknown_collection_raises_not_found(store: VectorStore) -> None:
    with pytest.raises(ResourceNotFoundException):
        store.get_collection("nope")


def test_list_collections_is_ordered_by_id(store: VectorStore) -> None:
    assert store.list_collections() == []
    for c in ["b-2", "a_1", "c.3", "A0"]:
        store.create_collection(collection(c))
    assert [c.collection_id for c in store.list_collections()] == ["A0", "a_1", "b-2", "c.3"]


def test_a_collections_false_candidate_budget_is_stored(store: VectorStore) -> None:
    store.create_collection(collection("c1", false_candidate_budget=0.25))
    store.create_collection(collection("c2"))
    assert store.get_collection("c1").false_candidate_budget == 0.25
    assert store.get_collection("c2").false_candidate_budget is None


def test_update_collection_replaces_its_settings(store: VectorStore) -> None:
    store.create_collection(collection("c1"))
    updated = collection("c1", threshold_floor=95.0, review_required=False, false_candidate_budget=2.0)
    store.update_collection(updated)
    assert store.get_collection("c1") == updated
    with pytest.raises(ResourceNotFoundException):
        store.update_collection(collection("nope"))


def test_delete_collection_removes_everything_and_the_id_can_be_reused(store: VectorStore) -> None:
    store.create_collection(collection("c1"))
    vectors = add_random(store, "c1", 20, seed=1)
    store.create_user("c1", user("u1"))
    store.delete_collection("c1")

    with pytest.raises(ResourceNotFoundException):
        store.get_collection("c1")
    assert [c.collection_id for c in store.list_collections()] == []
    with pytest.raises(ResourceNotFoundException):
        store.delete_collection("c1")

    store.create_collection(collection("c1"))
    assert store.count_faces("c1") == 0
    assert store.count_users("c1") == 0
    assert store.get_faces("c1", list(vectors)) == {}
    assert store.search("c1", next(iter(vectors.values())), k=5) == []


UNKNOWN_COLLECTION_CALLS = {
    "add_faces": lambda s: s.add_faces("nope", [face(fid(1), random_vectors(1, 0)[0])]),
    "get_faces": lambda s: s.get_faces("nope", [fid(1)]),
    "list_faces": lambda s: s.list_faces("nope"),
    "delete_faces": lambda s: s.delete_faces("nope", [fid(1)]),
    "count_faces": lambda s: s.count_faces("nope"),
    "search": lambda s: s.search("nope", random_vectors(1, 0)[0], k=1),
    "create_user": lambda s: s.create_user("nope", user("u1")),
    "get_user": lambda s: s.get_user("nope", "u1"),
    "list_users": lambda s: s.list_users("nope"),
    "delete_user": lambda s: s.delete_user("nope", "u1"),
    "count_users": lambda s: s.count_users("nope"),
    "set_face_user": lambda s: s.set_face_user("nope", [fid(1)], None),
    "delete_collection": lambda s: s.delete_collection("nope"),
}


@pytest.mark.parametrize("call", list(UNKNOWN_COLLECTION_CALLS))
def test_every_call_on_an_unknown_collection_raises_not_found(store: VectorStore, call: str) -> None:
    store.create_collection(collection("other"))
    with pytest.raises(ResourceNotFoundException):
        UNKNOWN_COLLECTION_CALLS[call](store)


# -- faces: records --------------------------------------------------------------------------------------
def test_a_face_round_trips_every_field_and_the_vector_bit_for_bit(store: VectorStore, cid: str) -> None:
    vector = random_vectors(1, seed=7)[0]
    vector[0] = np.float32(1 / 3)
    vector[1] = np.nextafter(np.float32(0.1), np.float32(1))
    vector[2] = np.float32(-1.2345678e-7)
    full = face(
        fid(1),
        vector,
        image_id="6f1f5a4e-0b57-4d5c-9c3e-2f6e1d3b1a77",
        bounding_box={"Width": 0.123456789, "Height": 0.5, "Left": 0.0, "Top": 0.987654321},
        confidence=99.99876,
        indexed_at=datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
        external_image_id="camera-7/frame 0001.jpg",
        source="s3://bucket/path/to/image.jpg",
        quality={"Brightness": 71.25, "Sharpness": 89.5, "Blur": 0.0625},
    )
    minimal = face(fid(2), random_vectors(1, seed=8)[0])
    store.create_user(cid, user("u1"))
    store.add_faces(cid, [full, minimal])
    store.set_face_user(cid, [fid(1)], "u1")

    got = store.get_faces(cid, [fid(1), fid(2)])
    assert set(got) == {fid(1), fid(2)}
    g = got[fid(1)]
    assert g.vector.dtype == np.float32 and g.vector.shape == (DIMENSION,)
    assert g.vector.tobytes() == vector.tobytes()
    assert g.indexed_at == full.indexed_at and g.indexed_at.utcoffset() == timedelta(hours=-5)
    assert (g.face_id, g.image_id, g.external_image_id, g.source) == (
        full.face_id,
        full.image_id,
        full.external_image_id,
        full.source,
    )
    assert g.bounding_box == full.bounding_box
    assert g.confidence == pytest.approx(full.confidence, abs=1e-9)
    assert g.quality == full.quality
    assert g.user_id == "u1"

    m = got[fid(2)]
    assert (m.external_image_id, m.user_id, m.source, m.quality) == (None, None, None, {})
    assert m.vector.tobytes() == minimal.vector.tobytes()

    # The same record comes back from list_faces and search.
    listed = {f.face_id: f for f in store.list_faces(cid)}
    assert listed[fid(1)].vector.tobytes() == vector.tobytes() and listed[fid(1)].quality == full.quality
    [hit] = store.search(cid, vector, k=1)
    assert hit.face.face_id == fid(1) and hit.distance == 0.0
    assert hit.face.vector.tobytes() == vector.tobytes() and hit.face.indexed_at == full.indexed_at


def test_get_faces_ignores_unknown_ids(store: VectorStore, cid: str) -> None:
    vectors = add_random(store, cid, 3, seed=2)
    got = store.get_faces(cid, [fid(0), "00000000-0000-4000-8000-00000000dead", fid(2)])
    assert set(got) == {fid(0), fid(2)}
    assert store.get_faces(cid, []) == {}
    assert got[fid(2)].vector.tobytes() == vectors[fid(2)].tobytes()


def test_count_faces_follows_adds_and_deletes(store: VectorStore, cid: str) -> None:
    assert store.count_faces(cid) == 0
    add_random(store, cid, 25, seed=3)
    assert store.count_faces(cid) == 25
    store.delete_faces(cid, [fid(0), fid(1)])
    assert store.count_faces(cid) == 23


# -- faces: search ---------------------------------------------------------------------------------------
def test_added_faces_are_searchable_as_soon_as_add_faces_returns(
    store: VectorStore, cid: str, deployed_refresh: None
) -> None:
    # With the deployed refresh policy (OpenSearch: wait_for); the other tests refresh on every write.
    for batch in range(5):
        vectors = add_random(store, cid, 10, seed=100 + batch, start=batch * 10)
        for face_id, vector in vectors.items():
            hits = store.search(cid, vector, k=1)
            assert [(h.face.face_id, h.distance) for h in hits] == [(face_id, 0.0)]


def test_search_on_an_empty_collection_returns_nothing(store: VectorStore, cid: str) -> None:
    assert store.search(cid, random_vectors(1, 0)[0], k=10) == []
    assert store.search(cid, random_vectors(1, 0)[0], k=10, max_distance=10.0) == []


def test_search_returns_exact_euclidean_distances_nearest_first(store: VectorStore, cid: str) -> None:
    # Hand-made: distances from the origin are exact in float32.
    hand_made = [
        face(fid(1), axis_vector(a4=1.0)),
        face(fid(2), axis_vector(a2=0.375, a3=0.5)),  # 0.625
        face(fid(3), axis_vector(a0=0.25)),
        face(fid(4), axis_vector(a1=-0.5)),
    ]
    store.add_faces(cid, hand_made)
    hits = store.search(cid, np.zeros(DIMENSION, np.float32), k=10)
    assert [(h.face.face_id, h.distance) for h in hits] == [
        (fid(3), 0.25),
        (fid(4), 0.5),
        (fid(2), 0.625),
        (fid(1), 1.0),
    ]

    # Random (in a collection of their own): the true nearest, each at its true distance, ascending.
    store.create_collection(collection("contract-b"))
    vectors = add_random(store, "contract-b", 200, seed=4, start=10)
    query = random_vectors(1, seed=99)[0]
    hits = store.search("contract-b", query, k=15)
    assert len(hits) == 15
    for h in hits:
        assert h.distance == pytest.approx(exact_distance(query, vectors[h.face.face_id]), rel=1e-6, abs=1e-7)
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    expected = sorted(vectors, key=lambda i: exact_distance(query, vectors[i]))[:15]
    assert [h.face.face_id for h in hits] == expected


def test_max_distance_is_exact_and_inclusive(store: VectorStore, cid: str) -> None:
    boundary = np.float32(0.625)
    just_beyond = np.nextafter(boundary, np.float32(1.0))
    store.add_faces(
        cid,
        [
            face(fid(1), axis_vector(a0=0.625)),  # exactly at the threshold
            face(fid(2), axis_vector(a1=0.375, a2=0.5)),  # 0.625 too, via the 3-4-5 triangle
            face(fid(3), axis_vector(a3=float(just_beyond))),  # one float32 ulp beyond
            face(fid(4), axis_vector(a4=0.5)),
            face(fid(5), axis_vector(a5=2.0)),
        ],
    )
    origin = np.zeros(DIMENSION, np.float32)
    hits = store.search(cid, origin, k=10, max_distance=0.625)
    assert [(h.face.face_id, h.distance) for h in hits] == [(fid(4), 0.5), (fid(1), 0.625), (fid(2), 0.625)]
    assert [h.face.face_id for h in store.search(cid, origin, k=10, max_distance=float(just_beyond))] == [
        fid(4),
        fid(1),
        fid(2),
        fid(3),
    ]
    assert store.search(cid, origin, k=10, max_distance=0.4999) == []
    assert [h.face.face_id for h in store.search(cid, origin, k=10, max_distance=0.0)] == []
    # The threshold and k both apply.
    assert [h.face.face_id for h in store.search(cid, origin, k=2, max_distance=0.625)] == [fid(4), fid(1)]


def test_max_distance_zero_finds_an_identical_vector(store: VectorStore, cid: str) -> None:
    vectors = add_random(store, cid, 30, seed=5)
    hits = store.search(cid, vectors[fid(17)], k=10, max_distance=0.0)
    assert [(h.face.face_id, h.distance) for h in hits] == [(fid(17), 0.0)]


def test_search_returns_at_most_k(store: VectorStore, cid: str) -> None:
    add_random(store, cid, 40, seed=6)
    query = random_vectors(1, seed=60)[0]
    for k in (1, 3, 10, 40):
        assert len(store.search(cid, query, k=k)) == k
    assert len(store.search(cid, query, k=1000)) == 40
    top3 = [h.face.face_id for h in store.search(cid, query, k=3)]
    assert [h.face.face_id for h in store.search(cid, query, k=10)][:3] == top3


def test_ties_are_broken_by_face_id(store: VectorStore, cid: str) -> None:
    twin = random_vectors(1, seed=8)[0]
    ids = [11, 4, 9, 2, 7, 5]  # inserted out of order
    store.add_faces(cid, [face(fid(i), twin) for i in ids])
    add_random(store, cid, 20, seed=9, start=100)
    hits = store.search(cid, twin, k=4)
    assert [(h.face.face_id, h.distance) for h in hits] == [(fid(i), 0.0) for i in (2, 4, 5, 7)]
    # Ties at the same non-zero distance too.
    shifted = twin + np.float32(0.5) * np.eye(DIMENSION, dtype=np.float32)[3]
    hits = store.search(cid, shifted, k=3)
    assert [h.face.face_id for h in hits] == [fid(i) for i in (2, 4, 5)]
    assert len({h.distance for h in hits}) == 1


def test_collections_are_isolated_even_with_identical_vectors(store: VectorStore, cid: str) -> None:
    store.create_collection(collection("contract-b"))
    vectors = random_vectors(12, seed=10)
    store.add_faces(cid, [face(fid(i), vectors[i]) for i in range(12)])
    store.add_faces("contract-b", [face(fid(100 + i), vectors[i]) for i in range(12)])

    a_ids = {fid(i) for i in range(12)}
    b_ids = {fid(100 + i) for i in range(12)}
    assert {h.face.face_id for h in store.search(cid, vectors[0], k=50)} == a_ids
    assert {h.face.face_id for h in store.search("contract-b", vectors[0], k=50)} == b_ids
    assert store.get_faces(cid, b_ids) == {}
    assert store.delete_faces(cid, b_ids) == []
    assert {f.face_id for f in store.list_faces("contract-b")} == b_ids

    store.delete_faces(cid, [fid(0)])
    assert store.search("contract-b", vectors[0], k=1)[0].face.face_id == fid(100)
    store.delete_collection(cid)
    assert store.count_faces("contract-b") == 12
    assert store.search("contract-b", vectors[5], k=1)[0].face.face_id == fid(105)


# -- faces: listing and deletion -------------------------------------------------------------------------
def test_list_faces_pages_through_every_face_once_in_face_id_order(store: VectorStore, cid: str) -> None:
    order = np.random.default_rng(11).permutation(53)
    vectors = random_vectors(53, seed=11)
    for chunk in np.array_split(order, 4):  # several adds, out of id order
        store.add_faces(cid, [face(fid(int(i)), vectors[i]) for i in chunk])

    pages: list[list[str]] = []
    after = None
    while True:
        page = [f.face_id for f in store.list_faces(cid, after=after, limit=10)]
        if not page:
            break
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [10, 10, 10, 10, 10, 3]
    flat = [i for p in pages for i in p]
    assert flat == sorted(fid(i) for i in range(53))
    assert [f.face_id for f in store.list_faces(cid, limit=1000)] == flat
    assert store.list_faces(cid, after=flat[-1]) == []
    # ``after`` need not be an existing id.
    assert [f.face_id for f in store.list_faces(cid, after=flat[19] + "0", limit=2)] == flat[20:22]


def test_list_faces_filters_by_user(store: VectorStore, cid: str) -> None:
    add_random(store, cid, 10, seed=12)
    store.create_user(cid, user("u1"))
    store.create_user(cid, user("u2"))
    store.set_face_user(cid, [fid(7), fid(1), fid(4)], "u1")
    store.set_face_user(cid, [fid(2)], "u2")
    assert [f.face_id for f in store.list_faces(cid, user_id="u1")] == [fid(1), fid(4), fid(7)]
    assert [f.face_id for f in store.list_faces(cid, user_id="u1", after=fid(1), limit=1)] == [fid(4)]
    assert [f.face_id for f in all_faces(store, cid, page=1, user_id="u1")] == [fid(1), fid(4), fid(7)]
    assert store.list_faces(cid, user_id="nobody") == []


def test_delete_faces_returns_only_the_ids_that_existed(store: VectorStore, cid: str) -> None:
    add_random(store, cid, 5, seed=13)
    unknown = "00000000-0000-4000-8000-00000000beef"
    deleted = store.delete_faces(cid, [fid(1), unknown, fid(3)])
    assert sorted(deleted) == [fid(1), fid(3)]
    assert store.delete_faces(cid, [fid(1)]) == []
    assert store.delete_faces(cid, []) == []


def test_deleted_faces_never_come_back(store: VectorStore, cid: str) -> None:
    vectors = add_random(store, cid, 60, seed=14)
    gone = [fid(i) for i in range(0, 60, 3)]
    assert sorted(store.delete_faces(cid, gone)) == sorted(gone)

    kept = set(vectors) - set(gone)
    assert store.count_faces(cid) == len(kept)
    assert store.get_faces(cid, gone) == {}
    assert {f.face_id for f in all_faces(store, cid, page=7)} == kept
    for face_id in gone:
        hits = store.search(cid, vectors[face_id], k=60)
        assert {h.face.face_id for h in hits} == kept
        assert all(h.distance > 0 for h in hits)
    # Adding more faces later does not resurrect them either.
    add_random(store, cid, 10, seed=15, start=1000)
    hits = store.search(cid, vectors[gone[0]], k=100)
    assert not {h.face.face_id for h in hits} & set(gone)


def test_search_over_a_few_thousand_faces_finds_the_true_neighbours(store: VectorStore, cid: str) -> None:
    rng = np.random.default_rng(16)
    centers = rng.normal(0, 0.05, (300, DIMENSION))
    labels = rng.integers(0, 300, 3000)
    vectors = (centers[labels] + rng.normal(0, 0.025, (3000, DIMENSION))).astype(np.float32)
    for chunk in np.array_split(np.arange(3000), 3):
        store.add_faces(cid, [face(fid(int(i)), vectors[i]) for i in chunk])
    index_of = {fid(i): i for i in range(3000)}
    queries = (centers[:20] + rng.normal(0, 0.025, (20, DIMENSION))).astype(np.float32)
    found = total = 0
    for q in queries:
        truth = np.argsort(np.linalg.norm(vectors.astype(np.float64) - q, axis=1))[:10]
        hits = store.search(cid, q, k=10)
        assert len(hits) == 10
        for h in hits:
            i = index_of[h.face.face_id]
            assert h.distance == pytest.approx(exact_distance(q, vectors[i]), rel=1e-6, abs=1e-7)
        found += len({h.face.face_id for h in hits} & {fid(int(i)) for i in truth})
        total += 10
    assert found / total >= 0.98


# -- users -----------------------------------------------------------------------------------------------
def test_create_and_get_user(store: VectorStore, cid: str) -> None:
    assert store.get_user(cid, "u1") is None
    store.create_user(cid, user("u1"))
    assert store.get_user(cid, "u1") == UserRecord("u1", T0 + timedelta(seconds=1), "CREATED")


def test_creating_an_existing_user_raises_already_exists(store: VectorStore, cid: str) -> None:
    store.create_user(cid, user("u1"))
    with pytest.raises(ResourceAlreadyExistsException):
        store.create_user(cid, user("u1"))
    assert store.count_users(cid) == 1


def test_list_users_pages_in_user_id_order(store: VectorStore, cid: str) -> None:
    names = ["carol", "Alice", "bob", "dave", "alice", "eve", "bob-2"]
    for n in names:
        store.create_user(cid, user(n))
    assert [u.user_id for u in store.list_users(cid)] == sorted(names)
    seen: list[str] = []
    after = None
    while page := store.list_users(cid, after=after, limit=3):
        seen.extend(u.user_id for u in page)
        after = page[-1].user_id
    assert seen == sorted(names)
    assert store.count_users(cid) == len(names)


def test_users_are_per_collection(store: VectorStore, cid: str) -> None:
    store.create_collection(collection("contract-b"))
    store.create_user(cid, user("u1"))
    store.create_user("contract-b", user("u1"))  # same id, other collection: no conflict
    store.delete_user(cid, "u1")
    assert store.get_user(cid, "u1") is None
    assert store.get_user("contract-b", "u1") is not None
    assert (store.count_users(cid), store.count_users("contract-b")) == (0, 1)


def test_user_status_is_active_exactly_while_faces_are_associated(store: VectorStore, cid: str) -> None:
    add_random(store, cid, 6, seed=17)
    store.create_user(cid, user("u1"))
    store.create_user(cid, user("u2"))
    status = lambda u: store.get_user(cid, u).status  # noqa: E731

    assert status("u1") == "CREATED"
    store.set_face_user(cid, [fid(0), fid(1)], "u1")
    assert status("u1") == "ACTIVE"
    assert {f.face_id: f.user_id for f in store.list_faces(cid)} == {
        fid(0): "u1",
        fid(1): "u1",
        fid(2): None,
        fid(3): None,
        fid(4): None,
        fid(5): None,
    }
    store.set_face_user(cid, [fid(0)], None)
    assert status("u1") == "ACTIVE"
    store.set_face_user(cid, [fid(1)], "u2")  # moving the last face away
    assert (status("u1"), status("u2")) == ("CREATED", "ACTIVE")
    store.delete_faces(cid, [fid(1)])  # deleting the last face
    assert status("u2") == "CREATED"
    store.set_face_user(cid, [fid(2), "00000000-0000-4000-8000-00000000beef"], "u2")  # unknown ids ignored
    assert status("u2") == "ACTIVE"
    assert store.get_faces(cid, [fid(2)])[fid(2)].user_id == "u2"


def test_associating_faces_with_an_unknown_user_raises_not_found(store: VectorStore, cid: str) -> None:
    add_random(store, cid, 2, seed=18)
    with pytest.raises(ResourceNotFoundException):
        store.set_face_user(cid, [fid(0)], "ghost")
    assert store.get_faces(cid, [fid(0)])[fid(0)].user_id is None


def test_delete_user_clears_its_faces_user_id_and_keeps_the_faces(store: VectorStore, cid: str) -> None:
    vectors = add_random(store, cid, 4, seed=19)
    store.create_user(cid, user("u1"))
    store.set_face_user(cid, [fid(0), fid(2)], "u1")
    store.delete_user(cid, "u1")

    assert store.get_user(cid, "u1") is None
    assert store.count_users(cid) == 0
    assert store.list_faces(cid, user_id="u1") == []
    assert all(f.user_id is None for f in store.list_faces(cid))
    assert store.count_faces(cid) == 4
    hit = store.search(cid, vectors[fid(2)], k=1)[0]
    assert (hit.face.face_id, hit.face.user_id) == (fid(2), None)
    with pytest.raises(ResourceNotFoundException):
        store.delete_user(cid, "u1")
    # Re-creating the user starts over: no faces, CREATED.
    store.create_user(cid, user("u1"))
    assert store.get_user(cid, "u1").status == "CREATED"
