"""Rekognition's request constraints (patterns, lengths, ranges), enforced with Rekognition's error names."""

from __future__ import annotations

import re
from typing import Any

from facesearch.errors import InvalidParameterException

COLLECTION_ID = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}$")
EXTERNAL_IMAGE_ID = re.compile(r"^[a-zA-Z0-9_.\-:]{1,255}$")
USER_ID = re.compile(r"^[a-zA-Z0-9_.\-:]{1,128}$")
FACE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def require(params: dict[str, Any], name: str) -> Any:
    if params.get(name) is None:
        raise InvalidParameterException(f"{name} is required")
    return params[name]


def match(value: Any, pattern: re.Pattern[str], name: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise InvalidParameterException(f"{name} {value!r} must match {pattern.pattern}")
    return value


def collection_id(params: dict[str, Any]) -> str:
    return match(require(params, "CollectionId"), COLLECTION_ID, "CollectionId")


def user_id(params: dict[str, Any], name: str = "UserId") -> str:
    return match(require(params, name), USER_ID, name)


def face_id(value: Any, name: str = "FaceId") -> str:
    return match(value, FACE_ID, name)


def face_ids(params: dict[str, Any], *, maximum: int) -> list[str]:
    ids = require(params, "FaceIds")
    if not isinstance(ids, list) or not 1 <= len(ids) <= maximum:
        raise InvalidParameterException(f"FaceIds must be a list of 1 to {maximum} face ids")
    return [face_id(v, "FaceIds[]") for v in ids]


def integer(params: dict[str, Any], name: str, default: int | None, lo: int, hi: int | None) -> int | None:
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterException(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise InvalidParameterException(f"{name} must be {bound}, got {value}")
    return value


def count(params: dict[str, Any], name: str, default: int, lo: int, hi: int | None) -> int:
    """An integer parameter that always has a value (``default`` when absent)."""
    value = integer(params, name, default, lo, hi)
    return default if value is None else value


def percentage(params: dict[str, Any], name: str, default: float) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParameterException(f"{name} must be a number, got {value!r}")
    if not 0.0 <= float(value) <= 100.0:
        raise InvalidParameterException(f"{name} must be between 0 and 100, got {value}")
    return float(value)


def choice(params: dict[str, Any], name: str, default: str, options: tuple[str, ...]) -> str:
    value = params.get(name, default)
    if value not in options:
        raise InvalidParameterException(f"{name} must be one of {list(options)}, got {value!r}")
    return value


def boolean(params: dict[str, Any], name: str, default: bool) -> bool:
    """A JSON boolean, nothing else: ``"false"`` is a string, and a truthy one (Rekognition: ValidationException)."""
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise InvalidParameterException(f"{name} must be a boolean (true or false), got {value!r}")
    return value


# Each operation's request fields (Rekognition's, plus our additive extensions); anything else is refused, as
# Rekognition refuses an unknown field, instead of being silently ignored (a misspelt threshold would be).
PARAMETERS: dict[str, frozenset[str]] = {
    name: frozenset(fields.split())
    for name, fields in {
        "CreateCollection": "CollectionId Tags FaceMatchThresholdFloor ReviewRequired FalseCandidateBudget",
        "UpdateCollection": "CollectionId FaceMatchThresholdFloor ReviewRequired FalseCandidateBudget",
        "DescribeCollection": "CollectionId",
        "ListCollections": "NextToken MaxResults",
        "DeleteCollection": "CollectionId",
        "IndexFaces": "CollectionId Image ExternalImageId DetectionAttributes MaxFaces QualityFilter",
        "ListFaces": "CollectionId NextToken MaxResults UserId FaceIds",
        "DeleteFaces": "CollectionId FaceIds",
        "PurgeDeletedFaces": "CollectionId",
        "EraseFaces": "CollectionId ExternalImageId UserId",
        "SearchFaces": "CollectionId FaceId MaxFaces FaceMatchThreshold",
        "SearchFacesByDescriptor": "CollectionId MaxFaces FaceMatchThreshold",
        "SearchFacesByImage": "CollectionId Image MaxFaces FaceMatchThreshold QualityFilter AllFaces",
        "CompareFaces": "SourceImage TargetImage SimilarityThreshold QualityFilter",
        "DetectFaces": "Image Attributes",
        "CreateUser": "CollectionId UserId ClientRequestToken",
        "DeleteUser": "CollectionId UserId ClientRequestToken",
        "ListUsers": "CollectionId MaxResults NextToken",
        "AssociateFaces": "CollectionId UserId FaceIds UserMatchThreshold ClientRequestToken",
        "DisassociateFaces": "CollectionId UserId FaceIds ClientRequestToken",
        "SearchUsers": "CollectionId UserId FaceId UserMatchThreshold MaxUsers",
        "SearchUsersByImage": "CollectionId Image UserMatchThreshold MaxUsers QualityFilter",
    }.items()
}


def known_parameters(operation: str, params: dict[str, Any]) -> None:
    allowed = PARAMETERS.get(operation)
    if allowed is None:
        return
    unknown = sorted(str(k) for k in params if k not in allowed)
    if unknown:
        raise InvalidParameterException(f"{operation} does not take {', '.join(unknown)}")
