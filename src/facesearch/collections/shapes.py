"""Rekognition response shapes built from engine faces and stored records."""

from __future__ import annotations

from typing import Any

from facesearch.engine.engine import FACE_MODEL_VERSION, Face
from facesearch.store.records import FaceRecord


def face_detail(face: Face, width: int, height: int, attributes: str = "DEFAULT") -> dict[str, Any]:
    detail: dict[str, Any] = {
        "BoundingBox": face.bounding_box(width, height),
        "Confidence": round(float(face.confidence) * 100.0, 4),
        "Landmarks": face.landmarks_ratio(width, height),
        "Pose": {
            "Roll": round(face.quality.roll, 3),
            "Yaw": round(face.quality.yaw, 3),
            "Pitch": round(face.quality.pitch, 3),
        },
        "Quality": {
            "Brightness": round(face.quality.brightness, 3),
            "Sharpness": round(face.quality.sharpness, 3),
        },
    }
    if attributes == "ALL":
        detail["FaceSizePixels"] = round(face.quality.size, 1)  # our extension: the measure SMALL_BOUNDING_BOX uses
    return detail


def compared_face(face: Face, width: int, height: int) -> dict[str, Any]:
    detail = face_detail(face, width, height)
    return {k: detail[k] for k in ("BoundingBox", "Confidence", "Landmarks", "Pose", "Quality")}


def stored_face(record: FaceRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "FaceId": record.face_id,
        "BoundingBox": dict(record.bounding_box),
        "ImageId": record.image_id,
        "Confidence": round(record.confidence * 100.0, 4),
        "IndexFacesModelVersion": FACE_MODEL_VERSION,
    }
    if record.external_image_id is not None:
        out["ExternalImageId"] = record.external_image_id
    if record.user_id is not None:
        out["UserId"] = record.user_id
    return out
