"""EventBridge: what the functions tell other systems. One event type today, ``FaceSearchCompleted``."""

from __future__ import annotations

import json
from typing import Any

SOURCE = "facesearch"
FACE_SEARCH_COMPLETED = "FaceSearchCompleted"


class EventPublishError(RuntimeError):
    """EventBridge accepted the call but not the entry (throttled, bus missing): transient, so retried."""


class EventPublisher:
    def __init__(self, bus_name: str, *, client: Any | None = None, source: str = SOURCE) -> None:
        if client is None:
            import boto3

            client = boto3.client("events")
        self.bus_name = bus_name
        self.client = client
        self.source = source

    def publish(self, detail_type: str, detail: dict[str, Any], *, resources: list[str] | None = None) -> str:
        entry = {
            "EventBusName": self.bus_name,
            "Source": self.source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, default=str),
            "Resources": resources or [],
        }
        response = self.client.put_events(Entries=[entry])
        result = response["Entries"][0]
        if response.get("FailedEntryCount") or "EventId" not in result:
            raise EventPublishError(
                f"{detail_type} not published: {result.get('ErrorCode')} {result.get('ErrorMessage')}"
            )
        return result["EventId"]


def search_completed_detail(collection_id: str, bucket: str, key: str, result: dict[str, Any]) -> dict[str, Any]:
    """The detail of ``FaceSearchCompleted``: what was searched, and per face its matches with ReviewRequired,
    so a consumer can route matches that need a human to review before anyone acts on them."""
    faces = result.get("SearchedFaces") or [
        {"BoundingBox": result.get("SearchedFaceBoundingBox"), "FaceMatches": result.get("FaceMatches", [])}
    ]
    return {
        "CollectionId": collection_id,
        "Object": {"Bucket": bucket, "Key": key},
        "Faces": [
            {
                "BoundingBox": f.get("BoundingBox"),
                "Matches": [
                    {
                        "FaceId": m["Face"]["FaceId"],
                        "ExternalImageId": m["Face"].get("ExternalImageId"),
                        "UserId": m["Face"].get("UserId"),
                        "Similarity": m["Similarity"],
                        "ReviewRequired": m.get("ReviewRequired", True),
                    }
                    for m in f.get("FaceMatches", [])
                ],
            }
            for f in faces
        ],
    }


__all__ = ["FACE_SEARCH_COMPLETED", "EventPublishError", "EventPublisher", "search_completed_detail"]
