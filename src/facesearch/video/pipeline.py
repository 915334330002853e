"""The local video pipeline (``facesearch video``): frames → FrameMatcher → track searches → one record per frame.

Runs in process on whatever service it is given (the embedded store by default); the same FrameMatcher and
record shape serve the ``match_frames`` Lambda consumer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facesearch.annotate import draw_faces
from facesearch.video.matcher import CameraState, FrameMatcher, FrameResult, VideoFrame
from facesearch.video.records import frame_record
from facesearch.video.search import TrackSearcher

MATCH_COLOR = (230, 40, 40)
UNKNOWN_COLOR = (40, 200, 60)
PREDICTED_COLOR = (150, 150, 150)


@dataclass
class RunStats:
    frames: int = 0
    seconds: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)
    tracks: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run_pipeline(
    frames: Iterable[VideoFrame],
    matcher: FrameMatcher,
    searcher: TrackSearcher,
    *,
    state: CameraState | None = None,
    on_record: Callable[[dict[str, Any], FrameResult], None] | None = None,
) -> RunStats:
    state = state or matcher.new_state()
    stats = RunStats()
    start = time.perf_counter()
    for frame in frames:
        result = matcher.process(frame, state)
        for track in result.to_search:
            matcher.apply_search(state, track, searcher.search(frame, track), frame.frame_number)
        record = frame_record(result)
        stats.frames += 1
        if on_record is not None:
            on_record(record, result)
    stats.seconds = time.perf_counter() - start
    stats.counters = dict(state.counters)
    stats.tracks = state.tracker.next_id - 1
    return stats


def face_label(face: dict[str, Any]) -> str:
    """``#3 alice 99.1`` — track id, the best match's ExternalImageId (or FaceId), similarity."""
    label = f"#{face['TrackId']}"
    if face["MatchedFaces"]:
        best = face["MatchedFaces"][0]
        name = best["Face"].get("ExternalImageId") or best["Face"]["FaceId"][:8]
        label += f" {name} {best['Similarity']:.1f}"
    return label


def annotate(rgb: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    h, w = rgb.shape[:2]
    boxes, labels, colors = [], [], []
    for face in record["FaceSearchResponse"]:
        b = face["DetectedFace"]["BoundingBox"]
        boxes.append((b["Left"] * w, b["Top"] * h, (b["Left"] + b["Width"]) * w, (b["Top"] + b["Height"]) * h))
        labels.append(face_label(face))
        colors.append(MATCH_COLOR if face["MatchedFaces"] else PREDICTED_COLOR if face["Predicted"] else UNKNOWN_COLOR)
    return draw_faces(rgb, boxes, labels=labels, colors=colors)
