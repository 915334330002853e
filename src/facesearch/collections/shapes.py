"""Rekognition response shapes, all in one place: engine faces and stored records in, Rekognition dicts out.

The engine returns plain data (engine/types.py) and the service decides *what* to answer; this module decides
*how it looks on the wire*, field by field as botocore's Rekognition model names them, plus our additive
extensions (``ReviewRequired``, ``MatchExplanation``, ``FaceSizePixels``), which a stock client ignores.
"""

from __future__ import annotations

from typing import Any

from facesearch.engine.similarity import similarity_from_distance
from facesearch.engine.types import FACE_MODEL_VERSION, AnalyzedImage, Face
from facesearch.store.records import CollectionRecord, FaceRecord, Neighbor

LANDMARK_TYPES = ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")
MATCH_METRIC = "euclidean distance between 128-d dlib ResNet descriptors"


def bounding_box(face: Face, width: int, height: int) -> dict[str, float]:
    """Rekognition's BoundingBox: ratios of the image size (may extend slightly past 0..1 at the edges)."""
    x1, y1, x2, y2 = face.box
    return {
        "Width": float((x2 - x1) / width),
        "Height": float((y2 - y1) / height),
        "Left": float(x1 / width),
        "Top": float(y1 / height),
    }


def landmarks(face: Face, width: int, height: int) -> list[dict[str, float | str]]:
    return [
        {"Type": name, "X": float(x / width), "Y": float(y / height)}
        for name, (x, y) in zip(LANDMARK_TYPES, face.landmarks, strict=True)
    ]


def confidence(face: Face) -> float:
    return round(float(face.confidence) * 100.0, 4)


def similarity(distance: float) -> float:
    return round(float(similarity_from_distance(distance)), 5)


def face_detail(face: Face, width: int, height: int, attributes: str = "DEFAULT") -> dict[str, Any]:
    detail: dict[str, Any] = {
        "BoundingBox": bounding_box(face, width, height),
        "Confidence": confidence(face),
        "Landmarks": landmarks(face, width, height),
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


def box_and_confidence(face: Face, image: AnalyzedImage) -> dict[str, Any]:
    """SearchFacesByImage's SearchedFace* and CompareFaces' SourceImageFace."""
    return {"BoundingBox": bounding_box(face, image.width, image.height), "Confidence": confidence(face)}


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


def face_match(collection: CollectionRecord, neighbor: Neighbor, max_distance: float) -> dict[str, Any]:
    """One FaceMatch, with why it was returned: the exact distance against the threshold's distance, and
    where the gallery face came from, so a reviewer can judge it."""
    return {
        "Similarity": similarity(neighbor.distance),
        "Face": stored_face(neighbor.face),
        "ReviewRequired": collection.review_required,
        "MatchExplanation": {
            "Distance": round(neighbor.distance, 6),
            "MaxDistance": round(max_distance, 6),
            "Metric": MATCH_METRIC,
            "Source": neighbor.face.source,
        },
    }


def user_match(user_id: str, status: str, distance: float) -> dict[str, Any]:
    return {"Similarity": similarity(distance), "User": {"UserId": user_id, "UserStatus": status}}


def orientation(image: AnalyzedImage) -> str | None:
    return "ROTATE_0" if not image.image.exif_rotated else None


def index_faces_response(
    image: AnalyzedImage, face_records: list[dict[str, Any]], unindexed: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "FaceRecords": face_records,
        "OrientationCorrection": orientation(image),
        "FaceModelVersion": FACE_MODEL_VERSION,
        "UnindexedFaces": unindexed,
    }


def search_faces_by_image_response(searched: list[dict[str, Any]], all_faces: bool) -> dict[str, Any]:
    """Rekognition's shape for the largest face; ``SearchedFaces`` (our AllFaces extension) for every face."""
    out: dict[str, Any] = {
        "SearchedFaceBoundingBox": searched[0]["BoundingBox"],
        "SearchedFaceConfidence": searched[0]["Confidence"],
        "FaceMatches": searched[0]["FaceMatches"],
        "FaceModelVersion": FACE_MODEL_VERSION,
    }
    if all_faces:
        out["SearchedFaces"] = searched
    return out


def audit_matches(matches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the audit log keeps of each FaceMatch: enough to answer "who was shown whom"."""
    return [
        {
            "FaceId": m["Face"]["FaceId"],
            "Similarity": m["Similarity"],
            "ExternalImageId": m["Face"].get("ExternalImageId"),
            "UserId": m["Face"].get("UserId"),
        }
        for m in matches
    ]
