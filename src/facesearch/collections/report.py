"""`facesearch collection report C`: a collection's false-match picture in one place.

Size, floor and budgeted default with the false-match risk at each (DescribeCollection), faces of different
people (different ExternalImageIds or users) that are as alike as a search would return — the same person under
two names is a false match waiting to happen — and what the audit log says about the searches run on it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from facesearch.engine.similarity import distance_from_similarity, similarity_from_distance
from facesearch.store.records import FaceRecord

SEARCH_OPERATIONS = ("SearchFaces", "SearchFacesByImage", "SearchUsers", "SearchUsersByImage")
MAX_PAIR_SCAN = 50_000  # all pairs of 50k faces is 1.25·10⁹ distances: about a minute; beyond, skip
BLOCK = 512


def near_duplicates(faces: list[FaceRecord], similarity: float, *, limit: int = 100) -> list[dict[str, Any]]:
    """Pairs of faces under different names (user, else ExternalImageId) at ``similarity`` or more, closest first.

    Faces without a name are skipped: nothing says they are different people.
    """
    named = [f for f in faces if (f.user_id or f.external_image_id)]
    if len(named) < 2:
        return []
    x = np.stack([np.asarray(f.vector, np.float32) for f in named])
    names = np.array([f.user_id or f.external_image_id for f in named])
    sq = np.einsum("ij,ij->i", x, x)
    cut = distance_from_similarity(similarity)
    found: list[tuple[float, int, int]] = []
    for start in range(0, len(x), BLOCK):
        rows = slice(start, min(start + BLOCK, len(x)))
        d2 = sq[rows, None] + sq[None, start:] - 2.0 * (x[rows] @ x[start:].T)
        d = np.sqrt(np.maximum(d2, 0.0))
        i, j = np.nonzero(d <= cut)
        keep = (j + start > i + start) & (names[rows][i] != names[start:][j])
        found.extend((float(d[a, b]), int(a + start), int(b + start)) for a, b in zip(i[keep], j[keep], strict=True))
    found.sort()
    return [
        {
            "Similarity": round(float(similarity_from_distance(dist)), 3),
            "Faces": [_face_ref(named[a]), _face_ref(named[b])],
        }
        for dist, a, b in found[:limit]
    ]


def _face_ref(f: FaceRecord) -> dict[str, Any]:
    ref: dict[str, Any] = {"FaceId": f.face_id}
    if f.external_image_id:
        ref["ExternalImageId"] = f.external_image_id
    if f.user_id:
        ref["UserId"] = f.user_id
    return ref


def search_statistics(records: Iterable[dict[str, Any]], collection_id: str) -> dict[str, Any]:
    """Searches of the collection in the audit log: how many, by whom, at which thresholds, with what results."""
    searches = [
        r for r in records if r.get("collection_id") == collection_id and r.get("operation") in SEARCH_OPERATIONS
    ]
    thresholds = [float(r["threshold"]) for r in searches if r.get("threshold") is not None]
    results = [len(r.get("results") or []) for r in searches]
    return {
        "Searches": len(searches),
        "ByOperation": dict(Counter(r["operation"] for r in searches)),
        "Callers": len({r.get("caller") for r in searches}),
        "WithoutPurpose": sum(1 for r in searches if not r.get("purpose")),
        "Thresholds": (
            {"Min": min(thresholds), "Median": statistics.median(thresholds), "Max": max(thresholds)}
            if thresholds
            else None
        ),
        "SearchesWithAnyMatch": sum(1 for n in results if n),
        "MatchesPerSearch": round(sum(results) / len(results), 3) if results else None,
    }


def collection_report(
    service: Any, collection_id: str, audit_records: Iterable[dict[str, Any]], *, similarity: float | None = None
) -> dict[str, Any]:
    """The whole picture; ``similarity`` for near-duplicates defaults to the collection's default threshold."""
    described = service.describe_collection(CollectionId=collection_id)
    faces: list[FaceRecord] = []
    after = None
    while True:
        page = service.store.list_faces(collection_id, after=after, limit=1000)
        faces.extend(page)
        if len(page) < 1000:
            break
        after = page[-1].face_id
    at = similarity if similarity is not None else described["DefaultFaceMatchThreshold"]
    report: dict[str, Any] = {
        "CollectionId": collection_id,
        **{k: described[k] for k in ("FaceCount", "UserCount", "FaceMatchThresholdFloor", "ReviewRequired")},
        **{k: described[k] for k in ("DefaultFaceMatchThreshold", "FalseCandidateBudget", "FalseMatchRisk")},
        "NearDuplicateSimilarity": at,
    }
    if len(faces) <= MAX_PAIR_SCAN:
        report["NearDuplicatesUnderDifferentNames"] = near_duplicates(faces, at)
    else:
        report["NearDuplicatesUnderDifferentNames"] = None
        report["NearDuplicatesSkipped"] = f"more than {MAX_PAIR_SCAN:,} faces: all pairs would take too long"
    report["SearchStatistics"] = search_statistics(audit_records, collection_id)
    return report
