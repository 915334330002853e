"""Searching a track's face in a collection, audited like every search of the service.

A track is searched with the descriptor the pipeline already computed for its best view (SearchFacesByImage
would detect and embed the face again), through the service's ``search_by_descriptor``: validation, the floor,
the budgeted default, the similarity scale, the match shape (``ReviewRequired``, ``MatchExplanation``) and the
audit record (``SearchFacesByDescriptor``) are the service's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facesearch.collections.service import FaceCollectionService, RequestContext
from facesearch.errors import InvalidParameterException
from facesearch.video.matcher import VideoFrame
from facesearch.video.tracking import Track

AUDIT_OPERATION = "SearchFacesByDescriptor"  # the service operation behind every track search


class TrackSearcher:
    """One collection's searches for the video pipeline, through ``FaceCollectionService.search_by_descriptor``:
    the floor (and the service minimum), the budgeted default threshold, the match shape and the audit record
    are the service's own."""

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
        described = service.describe_collection(CollectionId=collection_id)  # ResourceNotFoundException if unknown
        floor = described["FaceMatchThresholdFloor"]  # what searches enforce: collection floor and service minimum
        if threshold is not None and threshold < floor:
            raise InvalidParameterException(
                f"FaceMatchThreshold {threshold} is below collection {collection_id}'s floor of {floor}"
            )
        self.collection_id = collection_id
        self.threshold = threshold
        self.max_faces = max_faces
        self.context = context or RequestContext()
        self.searches = 0

    def search(self, frame: VideoFrame, track: Track) -> list[dict[str, Any]]:
        """The track's matches (best first), after the audit record is written."""
        if track.descriptor is None:
            raise ValueError(f"track {track.track_id} has no descriptor to search with")
        params: dict[str, Any] = {"CollectionId": self.collection_id, "MaxFaces": self.max_faces}
        if self.threshold is not None:
            params["FaceMatchThreshold"] = self.threshold
        out = self.service.search_by_descriptor(
            np.asarray(track.descriptor, np.float32),
            context=self.context,
            image_sha256=frame.sha256(),
            details={
                "source_id": frame.source_id,
                "frame_number": frame.frame_number,
                "track_id": track.track_id,
                "bounding_box": [round(float(v), 1) for v in track.box],
            },
            **params,
        )
        self.searches += 1
        return list(out["FaceMatches"])
