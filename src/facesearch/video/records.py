"""Results-stream records: Rekognition's stream-processor output shape, one record per processed frame.

Rekognition writes ``{"InputInformation": {"KinesisVideo": …}, "StreamProcessorInformation": {"Status": …},
"FaceSearchResponse": [{"DetectedFace": …, "MatchedFaces": [{"Similarity", "Face"}]}]}``. Ours has
``InputInformation.Frame {SourceId, FrameNumber (0-based), ProducerTimestamp, FrameOffsetInSeconds}`` in place
of ``KinesisVideo`` (frames come from our frame records, not a Kinesis video stream) and, on each face,
``TrackId`` (the same person appearance across frames), ``ReviewRequired`` (a match must be reviewed by a person
before anyone acts on it) and ``Predicted`` (true when the box is the tracker's prediction on a frame that was
not detected; the face's confidence, landmarks, pose and quality are then those of its latest detection, with
the landmarks moved along with the box).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facesearch.collections.shapes import face_detail
from facesearch.video.matcher import FaceInFrame, FrameResult

DETECTED_FACE_KEYS = ("BoundingBox", "Confidence", "Landmarks", "Pose", "Quality")


def detected_face(item: FaceInFrame, width: int, height: int) -> dict[str, Any]:
    detail = face_detail(item.face, width, height)
    out = {k: detail[k] for k in DETECTED_FACE_KEYS}
    if item.predicted:
        x1, y1, x2, y2 = item.box
        ox1, oy1, ox2, oy2 = item.face.box
        sx, sy = (x2 - x1) / max(ox2 - ox1, 1e-6), (y2 - y1) / max(oy2 - oy1, 1e-6)
        out["BoundingBox"] = {
            "Width": float((x2 - x1) / width),
            "Height": float((y2 - y1) / height),
            "Left": float(x1 / width),
            "Top": float(y1 / height),
        }
        pts = np.asarray(item.face.landmarks, dtype=np.float64)
        moved = np.column_stack([x1 + (pts[:, 0] - ox1) * sx, y1 + (pts[:, 1] - oy1) * sy])
        for mark, (x, y) in zip(out["Landmarks"], moved, strict=True):
            mark["X"], mark["Y"] = float(x / width), float(y / height)
    return out


def matched_faces(matches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"Similarity": m["Similarity"], "Face": m["Face"]} for m in matches]


def frame_record(result: FrameResult, *, status: str = "RUNNING") -> dict[str, Any]:
    frame = result.frame
    faces = []
    for item in result.faces:
        matches = item.track.info.get("matches", [])
        faces.append(
            {
                "DetectedFace": detected_face(item, frame.width, frame.height),
                "MatchedFaces": matched_faces(matches),
                "TrackId": item.track.track_id,
                "ReviewRequired": any(m.get("ReviewRequired", True) for m in matches),
                "Predicted": item.predicted,
            }
        )
    record: dict[str, Any] = {
        "InputInformation": {
            "Frame": {
                "SourceId": frame.source_id,
                "FrameNumber": frame.frame_number,
                "ProducerTimestamp": frame.producer_timestamp,
                "FrameOffsetInSeconds": round(frame.offset_seconds, 6),
            }
        },
        "StreamProcessorInformation": {"Status": status},
        "FaceSearchResponse": faces,
    }
    if result.skipped:
        record["Skipped"] = result.skipped
    return record
