"""FrameMatcher's policy (when to detect, embed and search) and the results-stream record shape, on a scripted
engine: the faces each detection returns are given by the test, so no model is needed."""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace

import numpy as np

from facesearch.engine.engine import AnalyzedImage, Face
from facesearch.engine.quality import FaceQuality
from facesearch.video.matcher import FrameMatcher, MatcherSettings, VideoFrame
from facesearch.video.records import frame_record

W, H = 640, 480


def face(cx: float, cy: float, size: float = 80.0, sharpness: float = 60.0) -> Face:
    box = (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
    marks = np.array(
        [[cx - 15, cy - 10], [cx + 15, cy - 10], [cx, cy + 5], [cx - 12, cy + 20], [cx + 12, cy + 20]], np.float32
    )
    return Face(box, marks, 0.99, FaceQuality(size, sharpness, 50.0, 0.0, 0.0, 0.0))


class ScriptedEngine:
    """analyze() returns the next scripted list of faces; embed() returns one descriptor per chip."""

    def __init__(self, script: list[list[Face]]) -> None:
        self.script = deque(script)
        self.analyzed = 0
        self.embedded = 0
        self.embedder = SimpleNamespace(embed=self._embed)

    def analyze(self, image, **_kw) -> AnalyzedImage:
        self.analyzed += 1
        return AnalyzedImage(image, self.script.popleft())

    def _embed(self, chips: np.ndarray) -> np.ndarray:
        self.embedded += len(chips)
        return np.full((len(chips), 128), 0.05, np.float32)


def frame(n: int) -> VideoFrame:
    return VideoFrame("cam1", n, np.zeros((H, W, 3), np.uint8), fps=10.0, producer_timestamp=1000.0 + n / 10)


MATCH = {"Similarity": 97.5, "Face": {"FaceId": "f-1", "ImageId": "i-1", "ExternalImageId": "alice"}}


def test_detects_every_kth_frame_and_searches_a_matched_track_once_while_the_view_does_not_improve():
    engine = ScriptedEngine([[face(100 + 12 * n, 200)] for n in range(0, 30, 3)])
    matcher = FrameMatcher(engine, MatcherSettings(detect_every=3))
    state = matcher.new_state()
    searched = []
    for n in range(30):
        result = matcher.process(frame(n), state)
        assert result.detected == (n % 3 == 0)
        assert len(result.faces) == 1 and result.faces[0].predicted == (n % 3 != 0)
        for track in result.to_search:
            searched.append((n, track.track_id))
            matcher.apply_search(state, track, [MATCH], n)
    assert engine.analyzed == 10
    assert searched == [(0, 1)]
    assert engine.embedded < 10  # new track + periodic checks only, never every face


def test_a_clearly_better_view_is_searched_again_and_small_or_blurred_faces_are_not_searched():
    sizes = [30, 50, 55, 90, 95]  # too small, first search, no better, better (x1.8), not again
    engine = ScriptedEngine([[face(300, 200, s)] for s in sizes] + [[face(300, 200, 95, sharpness=1.0)]])
    matcher = FrameMatcher(engine, MatcherSettings(detect_every=1, max_lost_frames=5))
    state = matcher.new_state()
    searched = []
    for n in range(6):
        for track in matcher.process(frame(n), state).to_search:
            searched.append(n)
            matcher.apply_search(state, track, [], n)
    assert searched == [1, 3]


def test_a_track_without_a_match_is_searched_again_at_as_good_a_view_after_a_while():
    engine = ScriptedEngine([[face(300, 200, 80)] for _ in range(40)])
    matcher = FrameMatcher(engine, MatcherSettings(detect_every=1, retry_unmatched_every=15, max_lost_frames=5))
    state = matcher.new_state()
    searched = []
    for n in range(40):
        for track in matcher.process(frame(n), state).to_search:
            searched.append(n)
            matcher.apply_search(state, track, [], n)
    assert searched == [0, 15, 30]


def test_a_face_cut_by_the_frame_edge_waits_to_be_searched_until_it_is_whole():
    engine = ScriptedEngine([[face(10, 200, 80)], [face(30, 200, 80)], [face(50, 200, 80)]])
    matcher = FrameMatcher(engine, MatcherSettings(detect_every=1))
    state = matcher.new_state()
    searched = [n for n in range(3) for _ in matcher.process(frame(n), state).to_search]
    assert searched == [2]


def test_duplicate_and_late_frames_are_counted_and_skipped():
    engine = ScriptedEngine([[face(100, 100)], [face(104, 100)]])
    matcher = FrameMatcher(engine, MatcherSettings(detect_every=1))
    state = matcher.new_state()
    matcher.process(frame(5), state)
    assert matcher.process(frame(5), state).skipped == "DUPLICATE_OR_LATE"
    assert matcher.process(frame(3), state).skipped == "DUPLICATE_OR_LATE"
    assert not matcher.process(frame(6), state).skipped
    assert state.counters["skipped"] == 2 and engine.analyzed == 2


def test_a_camera_that_restarts_its_numbering_is_detected_as_late_frames_until_a_new_state():
    """Documented behaviour: a restarted camera needs a new CameraState (the consumer keys state per session)."""
    engine = ScriptedEngine([[face(100, 100)], [face(100, 100)]])
    matcher = FrameMatcher(engine)
    state = matcher.new_state()
    matcher.process(frame(100), state)
    assert matcher.process(frame(0), state).skipped
    assert not matcher.process(frame(0), matcher.new_state()).skipped


def test_record_has_the_stream_processor_shape_with_frame_track_and_review():
    engine = ScriptedEngine([[face(320, 240, 100)]])
    matcher = FrameMatcher(engine, MatcherSettings(detect_every=2))
    state = matcher.new_state()
    first = matcher.process(frame(0), state)
    match = {
        "Similarity": 97.5,
        "Face": {"FaceId": "f-1", "ImageId": "i-1", "ExternalImageId": "alice", "Confidence": 99.9},
        "ReviewRequired": True,
        "MatchExplanation": {"Distance": 0.3},
    }
    matcher.apply_search(state, first.to_search[0], [match], 0)
    record = frame_record(first)
    assert record["InputInformation"]["Frame"] == {
        "SourceId": "cam1",
        "FrameNumber": 0,
        "ProducerTimestamp": 1000.0,
        "FrameOffsetInSeconds": 0.0,
    }
    assert record["StreamProcessorInformation"] == {"Status": "RUNNING"}
    (detected,) = record["FaceSearchResponse"]
    assert set(detected["DetectedFace"]) == {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"}
    assert detected["DetectedFace"]["BoundingBox"] == {
        "Width": 100 / W,
        "Height": 100 / H,
        "Left": 270 / W,
        "Top": 190 / H,
    }
    assert detected["MatchedFaces"] == [{"Similarity": 97.5, "Face": match["Face"]}]
    assert detected["TrackId"] == 1 and detected["ReviewRequired"] is True and detected["Predicted"] is False

    predicted = frame_record(matcher.process(frame(1), state))
    (p,) = predicted["FaceSearchResponse"]
    assert p["Predicted"] is True and p["TrackId"] == 1 and p["MatchedFaces"] == detected["MatchedFaces"]
    assert predicted["InputInformation"]["Frame"]["FrameOffsetInSeconds"] == 0.1
    eye = p["DetectedFace"]["Landmarks"][0]
    box = p["DetectedFace"]["BoundingBox"]
    assert box["Left"] < eye["X"] < box["Left"] + box["Width"]  # landmarks move with the predicted box


def test_a_face_without_matches_needs_no_review():
    engine = ScriptedEngine([[face(320, 240)]])
    matcher = FrameMatcher(engine)
    state = matcher.new_state()
    result = matcher.process(frame(0), state)
    matcher.apply_search(state, result.to_search[0], [], 0)
    (f,) = frame_record(result)["FaceSearchResponse"]
    assert f["MatchedFaces"] == [] and f["ReviewRequired"] is False


def test_camera_state_survives_a_json_round_trip_and_continues_identically():
    """The consumer keeps a camera's state between invocations: a restored state gives the same records."""
    import json

    from facesearch.video.matcher import state_to_dict

    script = [[face(100 + 12 * n, 200), face(500 - 9 * n, 300, 70)] for n in range(0, 60, 3)]
    engine = ScriptedEngine(script)
    matcher = FrameMatcher(engine, MatcherSettings(detect_every=3))
    state = matcher.new_state()
    for n in range(30):
        result = matcher.process(frame(n), state)
        for track in result.to_search:
            matcher.apply_search(state, track, [MATCH] if track.track_id == 1 else [], n)
    saved = json.loads(json.dumps(state_to_dict(state)))
    twin_engine = ScriptedEngine(list(engine.script))
    twin = FrameMatcher(twin_engine, MatcherSettings(detect_every=3))
    restored = twin.restore_state(saved)
    state.previous_small = None  # not kept in the snapshot; compare like with like
    for n in range(30, 60):
        a = frame_record(matcher.process(frame(n), state))
        b = frame_record(twin.process(frame(n), restored))
        assert a == b
    assert restored.counters == state.counters and restored.tracker.next_id == state.tracker.next_id
