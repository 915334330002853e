"""The per-frame core of video face search, shared by ``facesearch video`` and the ``match_frames`` consumer.

For each frame of a camera: detect faces (every ``detect_every``-th frame; boxes in between are the tracker's
predictions), associate them with the camera's tracks, and say which tracks need a k-NN search — when a track
starts and again only when a clearly better view of it arrives. The caller runs those searches (it owns the
collection service and the audit), gives the results back with :meth:`FrameMatcher.apply_search`, and turns
the frame into a results-stream record with :func:`facesearch.video.records.frame_record`.

Descriptors (the expensive part after detection: one ResNet pass per face) are computed only for faces that
need one: new tracks, better views, detections whose box could belong to more than one track (crossings), and
a periodic re-check of each track (``verify_every`` frames) that splits a track whose face changed identity.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from facesearch.engine.align import align_face
from facesearch.engine.decode import DecodedImage, decode_image
from facesearch.engine.engine import Face, FaceEngine
from facesearch.engine.quality import FaceQuality, quality_reasons
from facesearch.video.frames import FrameRecordError, decode_frame_record
from facesearch.video.tracking import INF, Detection, FaceTracker, Track, tracker_from_dict, tracker_to_dict


@dataclass(frozen=True)
class VideoFrame:
    """A decoded frame and where it comes from. ``encoded`` (the JPEG of a frame record) is what audits hash."""

    source_id: str
    frame_number: int
    rgb: np.ndarray
    fps: float = 0.0
    producer_timestamp: float | None = None
    encoded: bytes | None = None

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def offset_seconds(self) -> float:
        return self.frame_number / self.fps if self.fps > 0 else 0.0

    def sha256(self) -> str:
        """Of the JPEG for a frame record; of the raw RGB pixels for a frame decoded locally."""
        return hashlib.sha256(self.encoded if self.encoded is not None else self.rgb.tobytes()).hexdigest()


def frame_from_record(data: bytes) -> VideoFrame:
    """A Kinesis frame record → a decoded frame. Raises FrameRecordError (no header, truncated, oversized, not a
    JPEG, size not as the header says) or InvalidImageFormatException (a corrupt JPEG body): the consumer counts
    each and moves on, nothing is half-processed."""
    record = decode_frame_record(data)
    decoded = decode_image(record.jpeg, formats=frozenset({"JPEG"}), max_side=None)
    h = record.header
    if (decoded.width, decoded.height) != (h.width, h.height):
        raise FrameRecordError(
            f"frame {h.source_id}#{h.frame_number}: header says {h.width}x{h.height}, "
            f"the JPEG is {decoded.width}x{decoded.height}"
        )
    return VideoFrame(h.source_id, h.frame_number, decoded.rgb, h.fps, h.producer_timestamp, record.jpeg)


@dataclass(frozen=True)
class MatcherSettings:
    detect_every: int = 3  # detect on every k-th frame; the tracker predicts the boxes in between
    min_face_size: int = 40  # pixels: Rekognition's minimum, and where identification becomes reliable
    search_min_size: float = 40.0  # smallest face (shorter box side) worth a search
    better_view_ratio: float = 1.3  # a new search when the view score beats the searched one by this factor
    max_searches_per_track: int = 6
    retry_unmatched_every: int = 10  # frames before a track without a match is searched again (as good a view)
    verify_every: int = 30  # frames between descriptor re-checks of a track (identity switches)
    max_faces: int = 100  # per frame, largest first (Rekognition's per-image cap)
    max_lost_frames: int = 24  # frames a track survives without its face (someone walking behind someone)
    search_quality: str = "AUTO"  # QualityFilter a face must pass to be searched (the service's bars)
    ambiguity_margin: float = 0.35  # box costs closer than this to the best are a tie the descriptor breaks
    motion_width: int = 160  # camera-motion estimate (phase correlation) on a frame downscaled to this width


@dataclass
class FaceInFrame:
    track: Track
    box: np.ndarray
    face: Face  # the latest detection of this track (landmarks, pose and quality for the record)
    predicted: bool


@dataclass
class FrameResult:
    frame: VideoFrame
    faces: list[FaceInFrame]
    to_search: list[Track]
    detected: bool
    skipped: str | None = None  # why the frame was not processed (DUPLICATE_OR_LATE)
    embedded: int = 0


@dataclass
class CameraState:
    """Everything a camera's next frame needs: its tracks and when it was last detected."""

    tracker: FaceTracker
    last_detected_frame: int | None = None
    last_frame: int | None = None
    previous_small: np.ndarray | None = None  # the last frame, small and grey, for the camera-motion estimate
    counters: dict[str, int] = field(
        default_factory=lambda: {"frames": 0, "detected": 0, "embedded": 0, "searches": 0, "skipped": 0}
    )
    seconds: dict[str, float] = field(default_factory=lambda: {"motion": 0.0, "detect": 0.0, "embed": 0.0})


def _face_to_dict(face: Face) -> dict[str, Any]:
    return {
        "box": [round(float(v), 3) for v in face.box],
        "landmarks": [round(float(v), 3) for v in np.asarray(face.landmarks).reshape(-1)],
        "confidence": float(face.confidence),
        "quality": asdict(face.quality),
    }


def _face_from_dict(d: dict[str, Any]) -> Face:
    return Face(
        tuple(d["box"]),
        np.array(d["landmarks"], np.float32).reshape(5, 2),
        float(d["confidence"]),
        FaceQuality(**d["quality"]),
    )


def state_to_dict(state: CameraState) -> dict[str, Any]:
    """A JSON-able snapshot of a camera's state (tracks with their matches, last frames, counters), for a
    consumer that keeps it between invocations. The camera-motion reference frame is not kept: the first frame
    after a restore has no motion estimate."""
    return {
        "version": 1,
        "tracker": tracker_to_dict(state.tracker, _face_to_dict),
        "last_detected_frame": state.last_detected_frame,
        "last_frame": state.last_frame,
        "counters": dict(state.counters),
    }


def _partly_hidden(boxes: list[np.ndarray], limit: float = 0.1) -> list[bool]:
    """Boxes overlapping another face's box by more than ``limit`` of their own area (someone passing in front)."""
    if len(boxes) < 2:
        return [False] * len(boxes)
    b = np.array(boxes, dtype=np.float64)
    ix = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
    iy = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
    inter = np.where((ix > 0) & (iy > 0), ix * iy, 0.0)
    np.fill_diagonal(inter, 0.0)
    area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-6)
    return ((inter / area[:, None]).max(axis=1) > limit).tolist()


def view_score(face: Face) -> float:
    """How good a view is for identification: size (up to the 150 px chip), frontal pose, sharpness."""
    q = face.quality
    frontal = max(0.0, 1.0 - 0.5 * min(abs(q.yaw), 60.0) / 60.0 - 0.3 * min(abs(q.pitch), 45.0) / 45.0)
    return float(min(q.size, 150.0) * frontal * (0.5 + q.sharpness / 200.0))


class FrameMatcher:
    """Per frame: detect (or predict), track, and name the tracks to search. One instance serves many cameras;
    each camera's state is its own :class:`CameraState`."""

    def __init__(self, engine: FaceEngine, settings: MatcherSettings | None = None) -> None:
        self.engine = engine
        self.settings = settings or MatcherSettings()
        self._hann: np.ndarray | None = None

    def restore_state(self, data: dict[str, Any]) -> CameraState:
        """The inverse of :func:`state_to_dict`, with this matcher's tracker settings."""
        if data.get("version") != 1:
            raise ValueError(f"unknown camera state version {data.get('version')!r}")
        tracker = tracker_from_dict(data["tracker"], _face_from_dict, max_missed=self._max_missed())
        return CameraState(tracker, data["last_detected_frame"], data["last_frame"], counters=dict(data["counters"]))

    def new_state(self) -> CameraState:
        return CameraState(FaceTracker(max_missed=self._max_missed()))

    def _max_missed(self) -> int:
        """Detection frames a lost track is kept: ``max_lost_frames`` whatever ``detect_every`` is."""
        return max(1, math.ceil(self.settings.max_lost_frames / self.settings.detect_every))

    def process(self, frame: VideoFrame, state: CameraState) -> FrameResult:
        s = self.settings
        if state.last_frame is not None and frame.frame_number <= state.last_frame:
            # Re-delivered or late frame: the tracks have moved on; counted, not processed twice.
            state.counters["skipped"] += 1
            return FrameResult(frame, [], [], detected=False, skipped="DUPLICATE_OR_LATE")
        state.last_frame = frame.frame_number
        state.counters["frames"] += 1
        tracker = state.tracker
        t0 = time.perf_counter()
        self._follow_camera(frame, state)
        state.seconds["motion"] += time.perf_counter() - t0
        due = state.last_detected_frame is None or frame.frame_number - state.last_detected_frame >= s.detect_every
        if not due:
            tracker.predict(frame.frame_number)
            faces = [
                FaceInFrame(t, t.box.copy(), t.last_detection.payload, predicted=True)
                for t in tracker.tracks
                if t.missed == 0 and t.last_detection is not None
            ]
            return FrameResult(frame, faces, [], detected=False)

        state.last_detected_frame = frame.frame_number
        state.counters["detected"] += 1
        image = DecodedImage(frame.rgb, "RAW", "", False)
        t0 = time.perf_counter()
        analyzed = self.engine.analyze(image, embed=False, min_face_size=s.min_face_size, max_faces=s.max_faces)
        state.seconds["detect"] += time.perf_counter() - t0
        dets = [Detection(np.asarray(f.box, dtype=np.float64), None, f) for f in analyzed.faces]
        tracker.predict(frame.frame_number)
        hidden = _partly_hidden([d.box for d in dets])
        wanted = self._needs_descriptor(tracker, dets, frame, hidden)
        if wanted:
            t0 = time.perf_counter()
            chips = np.stack([align_face(frame.rgb, dets[i].payload.landmarks) for i in wanted])
            for i, vec in zip(wanted, self.engine.embedder.embed(chips), strict=True):
                dets[i].descriptor = vec
            state.counters["embedded"] += len(wanted)
            state.seconds["embed"] += time.perf_counter() - t0
        tracks = tracker.update(frame.frame_number, dets)
        tracker.ended.clear()
        faces, to_search = [], []
        for track, det in zip(tracks, dets, strict=True):
            faces.append(FaceInFrame(track, det.box, det.payload, predicted=False))
            if det.descriptor is not None and self._search_due(track, det.payload, frame):  # never a hidden face
                to_search.append(track)
        return FrameResult(frame, faces, to_search, detected=True, embedded=len(wanted))

    def apply_search(self, state: CameraState, track: Track, matches: list[dict[str, Any]], frame_number: int) -> None:
        """Record a finished search on its track: its matches are carried along the track from now on. A search is
        only ever made from a view at least as good as the last searched one, so its result replaces the last."""
        assert track.last_detection is not None, "a searched track has been detected"
        face = track.last_detection.payload
        track.info.update(
            matches=matches,
            searched_score=view_score(face),
            searched_frame=frame_number,
            searches=track.info.get("searches", 0) + 1,
        )
        state.counters["searches"] += 1

    def _follow_camera(self, frame: VideoFrame, state: CameraState) -> None:
        """Shift the tracks by the camera's motion since the last frame (phase correlation of small grey frames,
        well under a millisecond), so a panning camera does not look like every face jumping at once."""
        scale = frame.width / self.settings.motion_width
        small = cv2.resize(
            cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY),
            (self.settings.motion_width, max(8, round(frame.height / scale))),
            interpolation=cv2.INTER_AREA,
        ).astype(np.float32)
        previous, state.previous_small = state.previous_small, small
        if previous is None or previous.shape != small.shape or not state.tracker.tracks:
            return
        (dx, dy), response = cv2.phaseCorrelate(previous, small, self._window(small.shape))
        if response > 0.2 and math.hypot(dx, dy) * scale >= 1.0:
            state.tracker.shift(dx * scale, dy * scale)

    def _window(self, shape: tuple[int, ...]) -> np.ndarray:
        if self._hann is None or self._hann.shape != shape:
            self._hann = cv2.createHanningWindow((shape[1], shape[0]), cv2.CV_32F)
        return self._hann

    # ------------------------------------------------------------------------------------------- policy
    def _searchable(self, face: Face, frame: VideoFrame) -> bool:
        """Whole faces that pass the service's quality bar (``search_quality``, default AUTO). A face cut by the
        frame's edge (someone entering) or blurred or dark (a far crowd, motion blur) gives a descriptor that misses
        its person or matches a stranger; its track waits for a better view instead."""
        x1, y1, x2, y2 = face.box
        slack = 0.05 * (x2 - x1)
        inside = x1 >= -slack and y1 >= -slack and x2 <= frame.width + slack and y2 <= frame.height + slack
        return inside and not quality_reasons(face.quality, face.confidence, self.settings.search_quality)

    def _search_due(self, track: Track, face: Face, frame: VideoFrame) -> bool:
        s = self.settings
        if face.quality.size < s.search_min_size or not self._searchable(face, frame):
            return False
        if "searched_score" not in track.info:
            return True
        if track.info.get("searches", 0) >= s.max_searches_per_track:
            return False
        score = view_score(face)
        since = frame.frame_number - track.info["searched_frame"]
        if not track.info.get("matches") and since >= s.retry_unmatched_every:
            # No match yet: an enrolled person seen poorly at first gets another chance at an equally good view.
            return score >= 0.9 * track.info["searched_score"]
        return score >= s.better_view_ratio * track.info["searched_score"]

    def _needs_descriptor(
        self, tracker: FaceTracker, dets: list[Detection], frame: VideoFrame, hidden: list[bool]
    ) -> list[int]:
        """Which detections get a descriptor. Never a face partly hidden behind another: its descriptor is not its
        person's (it would split its track at the descriptor gate, or be searched and miss); such a face follows its
        track by box alone until it is clear."""
        s = self.settings
        frame_number = frame.frame_number
        if not dets:
            return []
        costs = tracker.box_costs([d.box for d in dets])  # tracks × detections
        finite = costs < INF
        wanted = []
        for di, det in enumerate(dets):
            if hidden[di]:
                continue
            face: Face = det.payload
            big_enough = face.quality.size >= s.search_min_size and self._searchable(face, frame)
            col = finite[:, di] if len(tracker.tracks) else np.zeros(0, bool)
            if not col.any():
                if big_enough:
                    wanted.append(di)  # a new track: its first search
                continue
            best = int(np.argmin(costs[:, di]))
            track = tracker.tracks[best]
            # Ambiguous: the boxes alone cannot tell which track this is (another track, or another detection
            # for the same track, within ``ambiguity_margin`` of the best cost): a crossing. Descriptors decide.
            margin = costs[best, di] + s.ambiguity_margin
            ambiguous = (costs[:, di] < margin).sum() > 1 or (costs[best] < margin).sum() > 1
            # Re-check only tracks that carry a match: a switch there would put a name on the wrong person.
            stale = track.descriptor is None or (
                bool(track.info.get("matches")) and frame_number - track.descriptor_frame >= s.verify_every
            )
            # Re-acquired after being lost (occlusion): make sure it is the same person before it gets the name back.
            reacquired = track.missed > 0
            if ambiguous or reacquired or (big_enough and (stale or self._search_due(track, face, frame))):
                wanted.append(di)
        return wanted
