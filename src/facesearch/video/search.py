"""Searching a track's face in a collection, audited like every search of the service.

A track is searched with the descriptor the pipeline already computed for its best view, so this goes to the
service's store and writes through the service's audit sink (the service's SearchFacesByImage would detect and
embed the face again). Validation, the threshold floor, the similarity scale and the match shape are the
service's: threshold below the collection's floor → InvalidParameterException; matches carry ``ReviewRequired``
and ``MatchExplanation`` exactly as SearchFacesByImage's do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facesearch.audit import AuditRecord
from facesearch.collections.service import FaceCollectionService, RequestContext
from facesearch.collections.shapes import stored_face
from facesearch.engine.similarity import distance_from_similarity, similarity_from_distance
from facesearch.errors import InvalidParameterException
from facesearch.video.matcher import VideoFrame
from facesearch.video.tracking import Track

AUDIT_OPERATION = "SearchFacesByVideoTrack"


class TrackSearcher:
    def __init__(
        self,
        service: FaceCollectionService,
        collection_id: str,
        *,
        threshold: float | None = None,
        max_faces: int = 5,
        context: RequestContext | None = None,
    ) -> None:
        self.service = service
        self.collection = service.store.get_collection(collection_id)  # ResourceNotFoundException if unknown
        floor = self.collection.threshold_floor
        self.threshold = floor if threshold is None else float(threshold)
        if self.threshold < floor:
            raise InvalidParameterException(
                f"FaceMatchThreshold {self.threshold} is below collection {collection_id}'s floor of {floor}"
            )
        self.max_distance = distance_from_similarity(self.threshold)
        self.max_faces = max_faces
        self.context = context or RequestContext()
        self.searches = 0

    def search(self, frame: VideoFrame, track: Track) -> list[dict[str, Any]]:
        """The track's matches (best first), after the audit record is written."""
        if track.descriptor is None:
            raise ValueError(f"track {track.track_id} has no descriptor to search with")
        cid = self.collection.collection_id
        neighbors = self.service.store.search(
            cid, np.asarray(track.descriptor, np.float32), k=self.max_faces, max_distance=self.max_distance
        )
        matches = [
            {
                "Similarity": round(float(similarity_from_distance(n.distance)), 5),
                "Face": stored_face(n.face),
                "ReviewRequired": self.collection.review_required,
                "MatchExplanation": {
                    "Distance": round(n.distance, 6),
                    "MaxDistance": round(self.max_distance, 6),
                    "Metric": "euclidean distance between 128-d dlib ResNet descriptors",
                    "Source": n.face.source,
                },
            }
            for n in neighbors
        ]
        ctx = self.context
        self.service.audit.write(
            AuditRecord(
                operation=AUDIT_OPERATION,
                caller=ctx.caller,
                collection_id=cid,
                purpose=ctx.purpose,
                request_id=ctx.request_id,
                query_image_sha256=frame.sha256(),
                threshold=self.threshold,
                results=[
                    {
                        "FaceId": m["Face"]["FaceId"],
                        "Similarity": m["Similarity"],
                        "ExternalImageId": m["Face"].get("ExternalImageId"),
                        "UserId": m["Face"].get("UserId"),
                    }
                    for m in matches
                ],
                details={
                    "source_id": frame.source_id,
                    "frame_number": frame.frame_number,
                    "track_id": track.track_id,
                    "bounding_box": [round(float(v), 1) for v in track.box],
                },
            )
        )
        self.searches += 1
        return matches
