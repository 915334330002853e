"""Face tracks across the frames of one camera: which detection in this frame is which person of the last ones.

Association cost between a track and a detection (lower is better, ``inf`` = never the same face):

* box: ``1 − IoU(predicted box, detected box) + 0.25 · centre distance / face size``; gated (``inf``) when the
  boxes do not overlap and the centres are more than ``max_centre_jump`` face sizes apart, or the sizes differ
  by more than ``max_size_ratio``;
* descriptor (when both sides have one): ``+ descriptor_weight · distance``, gated at ``descriptor_gate`` — two
  faces that far apart are different people whatever their boxes say, so a swap at a crossing starts a new track
  instead of carrying the wrong identity on.

Detections are assigned greedily by ascending cost (the few faces per frame make the optimal assignment and the
greedy one agree except in near-ties, which the descriptor term separates). Motion is a constant-velocity Kalman
filter (OpenCV's) on the box centre and size, so boxes can be *predicted* on frames that are not detected.

Why not a tracking library: the maintained candidates that take a custom distance do not install beside this
project's stack (norfair 2.3.0 pins numpy < 2, which opencv-python-headless 5 and the rest need), and
supervision's ByteTrack moved to the ``trackers`` package, which matches on box IoU only and pulls in
opencv-python (non-headless), supervision, matplotlib and av. This module keeps the association logic —
the part that carries our descriptor distance — small and tested (tests/unit/test_video_tracking.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

INF = math.inf


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def _size(box: np.ndarray) -> float:
    return float(math.sqrt(max(box[2] - box[0], 1e-6) * max(box[3] - box[1], 1e-6)))


@dataclass
class Detection:
    """One face found in a frame: its box (x1, y1, x2, y2) in frame pixels, optionally its descriptor, and
    whatever the caller wants carried along (``payload``: the engine's face, for records)."""

    box: np.ndarray
    descriptor: np.ndarray | None = None
    payload: Any = None


@dataclass
class Track:
    track_id: int
    box: np.ndarray  # current estimate (detected box on a matched frame, prediction otherwise)
    first_frame: int
    last_detected_frame: int
    hits: int = 1
    missed: int = 0  # detection frames in a row without a match
    descriptor: np.ndarray | None = None  # the latest descriptor computed for this track
    descriptor_frame: int = -1
    last_detection: Detection | None = None
    aspect: float = 1.0  # h / w of the last detected box
    info: dict[str, Any] = field(default_factory=dict)  # the caller's per-track state (search results, …)
    _kf: Any = field(default=None, repr=False)
    _frame: int = 0

    @property
    def size(self) -> float:
        return _size(self.box)

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])


def _kalman(box: np.ndarray) -> Any:
    """Constant velocity on (cx, cy, s): state (cx, cy, s, vx, vy, vs), measured (cx, cy, s)."""
    kf = cv2.KalmanFilter(6, 3)
    kf.transitionMatrix = np.eye(6, dtype=np.float32)
    for i in range(3):
        kf.transitionMatrix[i, i + 3] = 1.0
    kf.measurementMatrix = np.eye(3, 6, dtype=np.float32)
    s = _size(box)
    kf.processNoiseCov = np.diag([1, 1, 1, 0.5, 0.5, 0.2]).astype(np.float32) * np.float32(max(s / 40, 0.5))
    kf.measurementNoiseCov = np.eye(3, dtype=np.float32) * np.float32(max(s / 30, 1.0))
    kf.errorCovPost = np.diag([10, 10, 10, 100, 100, 25]).astype(np.float32)
    kf.statePost = np.array([[(box[0] + box[2]) / 2], [(box[1] + box[3]) / 2], [s], [0], [0], [0]], np.float32)
    return kf


def _box_from_state(state: np.ndarray, aspect: float) -> np.ndarray:
    cx, cy, s = (float(v) for v in state[:3, 0])
    s = max(s, 2.0)
    w = s / math.sqrt(aspect)
    h = s * math.sqrt(aspect)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


class FaceTracker:
    """Tracks of one camera. Call :meth:`predict` for every frame, :meth:`update` on frames that were detected."""

    def __init__(
        self,
        *,
        max_missed: int = 3,
        max_centre_jump: float = 1.0,
        max_size_ratio: float = 1.8,
        descriptor_gate: float = 0.62,
        descriptor_weight: float = 1.0,
        max_cost: float = 2.0,
    ) -> None:
        self.max_missed = max_missed
        self.max_centre_jump = max_centre_jump
        self.max_size_ratio = max_size_ratio
        self.descriptor_gate = descriptor_gate
        self.descriptor_weight = descriptor_weight
        self.max_cost = max_cost
        self.tracks: list[Track] = []
        self.next_id = 1
        self.frame = -1
        self.ended: list[Track] = []  # tracks dropped since the caller last looked (it may clear the list)

    # ---------------------------------------------------------------------------------------------- motion
    def predict(self, frame_number: int) -> list[Track]:
        """Advance every track to ``frame_number`` (one Kalman step per frame elapsed); returns the live tracks."""
        for track in self.tracks:
            steps = frame_number - track._frame
            for _ in range(max(0, min(steps, 60))):
                state = track._kf.predict()
                track.box = _box_from_state(state, track.aspect)
            track._frame = max(track._frame, frame_number)
        self.frame = max(self.frame, frame_number)
        return list(self.tracks)

    def shift(self, dx: float, dy: float) -> None:
        """Move every track by the camera's own motion (a pan), so that tracks keep only the people's motion."""
        for track in self.tracks:
            state = track._kf.statePost.copy()
            state[0, 0] += dx
            state[1, 0] += dy
            track._kf.statePost = state
            track.box = track.box + np.array([dx, dy, dx, dy])

    # ---------------------------------------------------------------------------------------- association
    def box_cost(self, track: Track, box: np.ndarray) -> float:
        s_t, s_d = track.size, _size(box)
        if max(s_t, s_d) / min(s_t, s_d) > self.max_size_ratio:
            return INF
        overlap = iou(track.box, box)
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        jump = float(np.linalg.norm(centre - track.centre)) / max(s_t, s_d)
        if overlap == 0.0 and jump > self.max_centre_jump:
            return INF
        return 1.0 - overlap + 0.25 * jump

    def cost(self, track: Track, det: Detection) -> float:
        c = self.box_cost(track, det.box)
        if c == INF or track.descriptor is None or det.descriptor is None:
            return c
        d = float(np.linalg.norm(track.descriptor - det.descriptor))
        if d > self.descriptor_gate:
            return INF
        return c + self.descriptor_weight * d

    def box_costs(self, boxes: list[np.ndarray]) -> np.ndarray:
        """(tracks × boxes) box-only costs, as :meth:`box_cost` gives them one by one (vectorised: a crowd has
        ~100 × 100 pairs a frame). Lets the caller see which detections are ambiguous before embedding."""
        if not self.tracks or not boxes:
            return np.full((len(self.tracks), len(boxes)), INF)
        t = np.array([tr.box for tr in self.tracks], dtype=np.float64)[:, None, :]
        b = np.array(boxes, dtype=np.float64)[None, :, :]
        s_t = np.sqrt(np.maximum(t[..., 2] - t[..., 0], 1e-6) * np.maximum(t[..., 3] - t[..., 1], 1e-6))
        s_d = np.sqrt(np.maximum(b[..., 2] - b[..., 0], 1e-6) * np.maximum(b[..., 3] - b[..., 1], 1e-6))
        ix = np.minimum(t[..., 2], b[..., 2]) - np.maximum(t[..., 0], b[..., 0])
        iy = np.minimum(t[..., 3], b[..., 3]) - np.maximum(t[..., 1], b[..., 1])
        inter = np.where((ix > 0) & (iy > 0), ix * iy, 0.0)
        area_t = (t[..., 2] - t[..., 0]) * (t[..., 3] - t[..., 1])
        area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
        overlap = np.where(inter > 0, inter / np.maximum(area_t + area_b - inter, 1e-12), 0.0)
        dx = (b[..., 0] + b[..., 2]) / 2 - (t[..., 0] + t[..., 2]) / 2
        dy = (b[..., 1] + b[..., 3]) / 2 - (t[..., 1] + t[..., 3]) / 2
        big = np.maximum(s_t, s_d)
        jump = np.hypot(dx, dy) / big
        cost = 1.0 - overlap + 0.25 * jump
        gated = (big / np.minimum(s_t, s_d) > self.max_size_ratio) | ((overlap == 0.0) & (jump > self.max_centre_jump))
        return np.where(gated, INF, cost)

    def costs(self, detections: list[Detection]) -> np.ndarray:
        """(tracks × detections) association costs, as :meth:`cost` gives them one by one."""
        out = self.box_costs([d.box for d in detections])
        for di, det in enumerate(detections):
            if det.descriptor is None:
                continue
            for ti, track in enumerate(self.tracks):
                if track.descriptor is None or out[ti, di] == INF:
                    continue
                d = float(np.linalg.norm(track.descriptor - det.descriptor))
                out[ti, di] = INF if d > self.descriptor_gate else out[ti, di] + self.descriptor_weight * d
        return out

    def update(self, frame_number: int, detections: list[Detection]) -> list[Track]:
        """Associate this frame's detections with the tracks; returns the track of each detection (new ones for
        detections no track can take). Tracks missing for more than ``max_missed`` detection frames end."""
        self.predict(frame_number)
        costs = self.costs(detections)
        ti_all, di_all = np.nonzero(costs < self.max_cost)
        pairs = sorted(zip(costs[ti_all, di_all].tolist(), ti_all.tolist(), di_all.tolist(), strict=True))
        taken_t: set[int] = set()
        out: list[Track | None] = [None] * len(detections)
        for _c, ti, di in pairs:
            if ti in taken_t or out[di] is not None:
                continue
            taken_t.add(ti)
            out[di] = self._observe(self.tracks[ti], frame_number, detections[di])
        for ti, track in enumerate(self.tracks):
            if ti not in taken_t:
                track.missed += 1
        alive = [t for t in self.tracks if t.missed <= self.max_missed]
        self.ended.extend(t for t in self.tracks if t.missed > self.max_missed)
        self.tracks = alive
        for di, det in enumerate(detections):
            if out[di] is None:
                out[di] = self._start(frame_number, det)
        return [t for t in out if t is not None]

    def _observe(self, track: Track, frame_number: int, det: Detection) -> Track:
        b = np.asarray(det.box, dtype=np.float64)
        track._kf.correct(np.array([[(b[0] + b[2]) / 2], [(b[1] + b[3]) / 2], [_size(b)]], dtype=np.float32))
        track.aspect = float((b[3] - b[1]) / max(b[2] - b[0], 1e-6))
        track.box = b
        track.hits += 1
        track.missed = 0
        track.last_detected_frame = frame_number
        track.last_detection = det
        if det.descriptor is not None:
            track.descriptor = det.descriptor
            track.descriptor_frame = frame_number
        return track

    def _start(self, frame_number: int, det: Detection) -> Track:
        b = np.asarray(det.box, dtype=np.float64)
        track = Track(
            track_id=self.next_id,
            box=b,
            first_frame=frame_number,
            last_detected_frame=frame_number,
            descriptor=det.descriptor,
            descriptor_frame=frame_number if det.descriptor is not None else -1,
            last_detection=det,
            aspect=float((b[3] - b[1]) / max(b[2] - b[0], 1e-6)),
            _kf=_kalman(b),
            _frame=frame_number,
        )
        self.next_id += 1
        self.tracks.append(track)
        return track


# ---------------------------------------------------------------------------------------------------- state
def _floats(a: np.ndarray | None, digits: int = 6) -> list[float] | None:
    return None if a is None else [round(float(v), digits) for v in np.asarray(a).reshape(-1)]


def tracker_to_dict(tracker: FaceTracker, encode_payload: Callable[[Any], Any]) -> dict[str, Any]:
    """A JSON-able snapshot of every live track (Kalman state included), so a camera's tracks survive a new
    process (the Lambda consumer keeps it in a table between invocations). ``encode_payload`` turns a
    detection's payload into JSON."""
    tracks = []
    for t in tracker.tracks:
        tracks.append(
            {
                "id": t.track_id,
                "box": _floats(t.box),
                "first": t.first_frame,
                "last": t.last_detected_frame,
                "hits": t.hits,
                "missed": t.missed,
                "descriptor": _floats(t.descriptor, 7),
                "descriptor_frame": t.descriptor_frame,
                "aspect": t.aspect,
                "info": t.info,
                "kf_state": _floats(t._kf.statePost),
                "kf_cov": _floats(t._kf.errorCovPost),
                "frame": t._frame,
                "detection": None
                if t.last_detection is None
                else {"box": _floats(t.last_detection.box), "payload": encode_payload(t.last_detection.payload)},
            }
        )
    return {"next_id": tracker.next_id, "frame": tracker.frame, "tracks": tracks}


def tracker_from_dict(data: dict[str, Any], decode_payload: Callable[[Any], Any], **settings: Any) -> FaceTracker:
    tracker = FaceTracker(**settings)
    tracker.next_id = int(data["next_id"])
    tracker.frame = int(data["frame"])
    for d in data["tracks"]:
        box = np.array(d["box"], dtype=np.float64)
        kf = _kalman(box)
        kf.statePost = np.array(d["kf_state"], np.float32).reshape(6, 1)
        kf.errorCovPost = np.array(d["kf_cov"], np.float32).reshape(6, 6)
        det = d["detection"]
        tracker.tracks.append(
            Track(
                track_id=int(d["id"]),
                box=box,
                first_frame=int(d["first"]),
                last_detected_frame=int(d["last"]),
                hits=int(d["hits"]),
                missed=int(d["missed"]),
                descriptor=None if d["descriptor"] is None else np.array(d["descriptor"], np.float32),
                descriptor_frame=int(d["descriptor_frame"]),
                last_detection=None
                if det is None
                else Detection(np.array(det["box"], np.float64), None, decode_payload(det["payload"])),
                aspect=float(d["aspect"]),
                info=dict(d["info"]),
                _kf=kf,
                _frame=int(d["frame"]),
            )
        )
    return tracker
