"""The face tracker: the same face keeps its track id; different faces never share one."""

from __future__ import annotations

import numpy as np

from facesearch.video.tracking import INF, Detection, FaceTracker


def box(cx: float, cy: float, s: float = 60.0) -> np.ndarray:
    return np.array([cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2])


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128)
    return (v / np.linalg.norm(v) * 0.5).astype(np.float32)  # far apart from other seeds (distance ~0.7)


def test_a_moving_face_keeps_its_track_and_is_predicted_between_detections():
    tracker = FaceTracker()
    ids = set()
    for n in range(0, 60, 3):  # detected every third frame, moving 4 px per frame
        for k in (1, 2):
            if n:
                tracker.predict(n - 3 + k)
        (track,) = tracker.update(n, [Detection(box(100 + 4 * n, 200))])
        ids.add(track.track_id)
    assert ids == {1}
    predicted = tracker.predict(61)[0].box
    assert np.allclose(predicted, box(100 + 4 * 61, 200), atol=6)  # the velocity was learned


def test_two_faces_crossing_keep_their_ids_when_descriptors_are_known():
    tracker = FaceTracker()
    a, b = unit(1), unit(2)
    seen: dict[int, set[int]] = {}
    for n in range(0, 40):
        xa, xb = 100 + 10 * n, 500 - 10 * n  # they meet at n = 20
        dets = [Detection(box(xb, 200), b.copy()), Detection(box(xa, 205), a.copy())]
        for who, track in zip(("b", "a"), tracker.update(n, dets), strict=True):
            seen.setdefault(track.track_id, set()).add(who)
    assert all(len(people) == 1 for people in seen.values())
    assert len(seen) == 2


def test_a_different_descriptor_at_the_same_place_starts_a_new_track():
    tracker = FaceTracker()
    (first,) = tracker.update(0, [Detection(box(300, 200), unit(1))])
    (second,) = tracker.update(1, [Detection(box(302, 200), unit(2))])
    assert second.track_id != first.track_id
    assert tracker.cost(first, Detection(box(302, 200), unit(2))) == INF


def test_a_face_lost_for_longer_than_max_missed_ends_and_returns_as_a_new_track():
    tracker = FaceTracker(max_missed=2)
    (t1,) = tracker.update(0, [Detection(box(300, 200))])
    for n in (3, 6, 9):
        tracker.update(n, [])
    assert tracker.tracks == [] and tracker.ended == [t1]
    (t2,) = tracker.update(12, [Detection(box(300, 200))])
    assert t2.track_id != t1.track_id


def test_a_face_hidden_for_one_detection_keeps_its_track():
    tracker = FaceTracker(max_missed=2)
    (t1,) = tracker.update(0, [Detection(box(300, 200))])
    tracker.update(3, [])
    (again,) = tracker.update(6, [Detection(box(301, 200))])
    assert again.track_id == t1.track_id


def test_far_jumps_and_size_changes_are_not_the_same_face():
    tracker = FaceTracker()
    (t,) = tracker.update(0, [Detection(box(100, 100))])
    assert tracker.box_cost(t, box(300, 100)) == INF  # 3 face sizes away, no overlap
    assert tracker.box_cost(t, box(100, 100, 150)) == INF  # 2.5 x the size
    assert tracker.box_cost(t, box(110, 100)) < 0.5


def test_camera_motion_is_removed_before_association():
    """A pan moves every face by more than its size between detections: shifted tracks still match."""
    tracker = FaceTracker()
    faces = [(100, 100), (200, 100), (300, 100)]
    tracks = tracker.update(0, [Detection(box(x, y, 50)) for x, y in faces])
    pan = -80.0
    tracker.predict(3)
    tracker.shift(pan, 0.0)
    again = tracker.update(3, [Detection(box(x + pan, y, 50)) for x, y in faces])
    assert [t.track_id for t in again] == [t.track_id for t in tracks]


def test_box_costs_lists_every_track_against_every_box():
    tracker = FaceTracker()
    tracker.update(0, [Detection(box(100, 100)), Detection(box(400, 100))])
    costs = tracker.box_costs([box(105, 100), box(800, 400)])
    assert costs.shape == (2, 2)
    assert costs[0, 0] < 0.5 and np.isinf(costs[1, 0]) and np.isinf(costs[:, 1]).all()
    assert FaceTracker().box_costs([box(1, 1)]).shape == (0, 1)


def test_the_vectorised_costs_equal_the_pairwise_definition():
    rng = np.random.default_rng(5)
    tracker = FaceTracker()
    tracker.update(0, [Detection(box(*rng.uniform(50, 600, 2), rng.uniform(30, 90)), unit(i)) for i in range(12)])
    dets = [
        Detection(box(*rng.uniform(50, 600, 2), rng.uniform(30, 90)), unit(i % 3) if i % 2 else None) for i in range(15)
    ]
    dets += [Detection(t.box + 3.0, t.descriptor) for t in tracker.tracks[:4]]  # near misses that do match
    matrix = tracker.costs(dets)
    pairwise = np.array([[tracker.cost(t, d) for d in dets] for t in tracker.tracks])
    assert np.array_equal(np.isinf(matrix), np.isinf(pairwise))
    assert np.allclose(matrix[np.isfinite(matrix)], pairwise[np.isfinite(pairwise)])
    assert np.isfinite(matrix).sum() >= 4
