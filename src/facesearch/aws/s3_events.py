"""What an S3 notification means for the service, shared by the ``index_faces`` and ``search_faces`` functions
(the handlers add only Powertools: batching, idempotency, logs, metrics, traces).

Each call ends in exactly one of three ways: done (a report/result object written), a permanent failure (the
same object would fail the same way again: an error report object is written and the call returns normally, so
the message is not retried), or a transient failure (raised: SQS redelivers, then moves it to the DLQ).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from facesearch.aws import s3 as s3keys
from facesearch.aws.events import FACE_SEARCH_COMPLETED, EventPublisher, search_completed_detail
from facesearch.aws.s3 import S3ObjectRef, is_permanent
from facesearch.collections.service import FaceCollectionService, RequestContext
from facesearch.errors import FaceSearchError

DELETE_CHUNK = 4096  # DeleteFaces' limit per call
NO_FACES = "NoFacesDetected"


@dataclass
class Outcome:
    """What happened to one object: the document written and the numbers the handler turns into metrics."""

    status: str  # INDEXED | REMOVED | SEARCHED | FAILED
    document: dict[str, Any]
    error_code: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == "FAILED"


def _error(exc: FaceSearchError) -> dict[str, str]:
    return {"Code": exc.code, "Message": exc.message}


def _object(ref: S3ObjectRef) -> dict[str, Any]:
    return {"Bucket": ref.bucket, "Key": ref.key, "VersionId": ref.version_id, "ETag": ref.etag}


class GalleryIndexer:
    """Gallery bucket → collection: ObjectCreated indexes, ObjectRemoved deletes that object's faces.

    The report at ``reports/<key>.json`` is also the record of which FaceIds an object produced, so a removal
    deletes exactly those faces (not every face that shares its ExternalImageId).
    """

    def __init__(self, service: FaceCollectionService, s3: Any, results_bucket: str) -> None:
        self.service = service
        self.s3 = s3
        self.results_bucket = results_bucket

    def index(self, ref: S3ObjectRef, context: RequestContext) -> Outcome:
        started = time.perf_counter()
        base: dict[str, Any] = {"Object": _object(ref), "RequestId": context.request_id}
        try:
            info = s3keys.inspect_image_object(self.s3, ref)
            target = s3keys.gallery_target(ref.key, info.metadata)
            base.update(CollectionId=target.collection_id, ExternalImageId=target.external_image_id)
            response = self.service.index_faces(
                context=context,
                CollectionId=target.collection_id,
                ExternalImageId=target.external_image_id,
                Image=ref.as_image(),
                QualityFilter="AUTO",
            )
        except Exception as exc:
            if not is_permanent(exc):
                raise
            assert isinstance(exc, FaceSearchError)
            return self._write(ref, Outcome("FAILED", {**base, "Status": "FAILED", "Error": _error(exc)}, exc.code))
        index_ms = (time.perf_counter() - started) * 1000
        timing = {"Timing": {"IndexFacesMs": round(index_ms, 1)}}
        if not response["FaceRecords"] and not response["UnindexedFaces"]:
            # IndexFaces itself answers an empty list; for an upload meant for the gallery that is an error to
            # report (a photo of nobody was put where faces are expected), and it is not retried.
            error = {"Code": NO_FACES, "Message": f"no face was detected in {ref.uri}"}
            document = {**base, "Status": "FAILED", "Error": error, **response, **timing}
            return self._write(ref, Outcome("FAILED", document, NO_FACES))
        document = {**base, "Status": "INDEXED", **response, **timing}
        return self._write(ref, Outcome("INDEXED", document, timings_ms={"IndexFaces": index_ms}))

    def remove(self, ref: S3ObjectRef, context: RequestContext) -> Outcome:
        report = s3keys.get_json(self.s3, self.results_bucket, s3keys.report_key(ref.key)) or {}
        base: dict[str, Any] = {"Object": _object(ref), "RequestId": context.request_id}
        face_ids = [r["Face"]["FaceId"] for r in report.get("FaceRecords", [])]
        cid = report.get("CollectionId")
        if report.get("Status") != "INDEXED" or not cid or not face_ids:
            # Never indexed (failed, outside the convention, no face) or already removed: nothing to delete.
            document = {**base, "Status": "REMOVED", "DeletedFaces": [], "Note": "no indexed faces recorded"}
            return self._write(ref, Outcome("REMOVED", document))
        started = time.perf_counter()
        deleted: list[str] = []
        try:
            # Faces associated with a user cannot be deleted (Rekognition's rule); the object is gone, so its
            # faces leave their users first.
            listed = self.service.list_faces(CollectionId=cid, FaceIds=face_ids)["Faces"]
            by_user: dict[str, list[str]] = {}
            for face in listed:
                if face.get("UserId"):
                    by_user.setdefault(face["UserId"], []).append(face["FaceId"])
            for uid, ids in by_user.items():
                for i in range(0, len(ids), 100):
                    self.service.disassociate_faces(
                        context=context, CollectionId=cid, UserId=uid, FaceIds=ids[i : i + 100]
                    )
            for i in range(0, len(face_ids), DELETE_CHUNK):
                chunk = face_ids[i : i + DELETE_CHUNK]
                deleted += self.service.delete_faces(context=context, CollectionId=cid, FaceIds=chunk)["DeletedFaces"]
        except Exception as exc:
            if not is_permanent(exc):
                raise
            assert isinstance(exc, FaceSearchError)
            document = {**base, "CollectionId": cid, "Status": "FAILED", "Error": _error(exc)}
            return self._write(ref, Outcome("FAILED", document, exc.code))
        ms = (time.perf_counter() - started) * 1000
        document = {
            **base,
            "CollectionId": cid,
            "ExternalImageId": report.get("ExternalImageId"),
            "Status": "REMOVED",
            "DeletedFaces": deleted,
            "Timing": {"DeleteFacesMs": round(ms, 1)},
        }
        return self._write(ref, Outcome("REMOVED", document, timings_ms={"DeleteFaces": ms}))

    def _write(self, ref: S3ObjectRef, outcome: Outcome) -> Outcome:
        s3keys.put_json(self.s3, self.results_bucket, s3keys.report_key(ref.key), outcome.document)
        return outcome


class QuerySearcher:
    """Query bucket → every face of the image searched → ``results/<key>.json`` and ``FaceSearchCompleted``."""

    def __init__(
        self, service: FaceCollectionService, s3: Any, results_bucket: str, events: EventPublisher | None
    ) -> None:
        self.service = service
        self.s3 = s3
        self.results_bucket = results_bucket
        self.events = events

    def search(self, ref: S3ObjectRef, context: RequestContext) -> Outcome:
        started = time.perf_counter()
        base: dict[str, Any] = {"Object": _object(ref), "RequestId": context.request_id}
        try:
            cid = s3keys.query_collection(ref.key)
            base["CollectionId"] = cid
            s3keys.inspect_image_object(self.s3, ref)
            response = self.service.search_faces_by_image(
                context=context, CollectionId=cid, Image=ref.as_image(), AllFaces=True
            )
        except Exception as exc:
            if not is_permanent(exc):
                raise
            assert isinstance(exc, FaceSearchError)
            document = {**base, "Status": "FAILED", "Error": _error(exc)}
            s3keys.put_json(self.s3, self.results_bucket, s3keys.result_key(ref.key), document)
            return Outcome("FAILED", document, exc.code)
        ms = (time.perf_counter() - started) * 1000
        document = {**base, "Status": "SEARCHED", **response, "Timing": {"SearchFacesByImageMs": round(ms, 1)}}
        # The result is stored before the event announces it, so a consumer that reacts can read it.
        s3keys.put_json(self.s3, self.results_bucket, s3keys.result_key(ref.key), document)
        if self.events is not None:
            detail = search_completed_detail(cid, ref.bucket, ref.key, response)
            detail["Result"] = {"Bucket": self.results_bucket, "Key": s3keys.result_key(ref.key)}
            self.events.publish(FACE_SEARCH_COMPLETED, detail, resources=[f"arn:aws:s3:::{ref.bucket}/{ref.key}"])
        return Outcome("SEARCHED", document, timings_ms={"SearchFacesByImage": ms})


class MalformedMessageError(ValueError):
    """An SQS body that is not an S3 notification. Failed, not dropped: SQS retries it into the DLQ, where a
    person can see what was sent."""


@dataclass(frozen=True)
class S3Change:
    event_name: str  # e.g. ObjectCreated:Put, ObjectRemoved:Delete
    ref: S3ObjectRef
    principal_id: str | None

    @property
    def created(self) -> bool:
        return self.event_name.startswith("ObjectCreated:")

    @property
    def removed(self) -> bool:
        return self.event_name.startswith("ObjectRemoved:")


@dataclass(frozen=True)
class S3Notification:
    """An S3 notification as it arrives in an SQS body: changes, or S3's ``s3:TestEvent`` (sent when the
    notification is configured; it names no object and must be acknowledged)."""

    changes: list[S3Change]
    test_event: bool = False


def parse_s3_message(body: str | None) -> S3Notification:
    import json

    from aws_lambda_powertools.utilities.data_classes import S3Event

    try:
        document = json.loads(body or "")
    except json.JSONDecodeError as exc:
        raise MalformedMessageError(f"SQS body is not JSON: {exc}") from None
    if isinstance(document, dict) and document.get("Event") == "s3:TestEvent":
        return S3Notification([], test_event=True)
    if not isinstance(document, dict) or not isinstance(document.get("Records"), list) or not document["Records"]:
        raise MalformedMessageError("SQS body is not an S3 notification (no Records)")
    changes = []
    try:
        for record in S3Event(document).records:
            obj = record["s3"]["object"]  # removals carry no size or eTag: read the dict, not the accessors
            ref = S3ObjectRef.from_notification(
                record.s3.bucket.name,
                obj["key"],
                version_id=obj.get("versionId") or None,
                etag=obj.get("eTag") or None,
                size=obj.get("size"),
            )
            principal = (record.get("userIdentity") or {}).get("principalId")
            changes.append(S3Change(record.event_name, ref, principal))
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedMessageError(f"S3 notification record is missing {exc}") from None
    return S3Notification(changes)


__all__ = [
    "GalleryIndexer",
    "MalformedMessageError",
    "Outcome",
    "QuerySearcher",
    "S3Change",
    "S3Notification",
    "parse_s3_message",
]
