"""S3 for the functions: the key conventions, one object's facts (size, metadata, version), and JSON reports.

Key conventions (README "Key convention"):

- gallery bucket: ``collections/<collection-id>/<external-image-id>/<file>`` indexes ``<file>`` into
  ``<collection-id>`` with ExternalImageId ``<external-image-id>`` (several files may share one, e.g. several
  photos of one person). Object metadata ``x-amz-meta-collection-id`` / ``x-amz-meta-external-image-id`` override
  the key's parts. A key that yields no valid collection id is an error, never a guess.
- query bucket: ``<collection-id>/<file>`` searches every face of ``<file>`` in ``<collection-id>``.
- results bucket: ``reports/<gallery key>.json`` for each gallery object, ``results/<query key>.json`` for each
  query object.

Errors are split the way the platform must treat them: ``FaceSearchError``s with a 4xx status are permanent (the
same object fails the same way every time: report it, don't retry); anything else (throttling, an unreachable
endpoint, a 5xx) is transient and propagates so SQS retries it and finally moves it to the dead-letter queue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from facesearch.collections.validation import COLLECTION_ID, EXTERNAL_IMAGE_ID
from facesearch.engine.decode import MAX_IMAGE_BYTES
from facesearch.errors import (
    FaceSearchError,
    ImageTooLargeException,
    InvalidImageFormatException,
    InvalidParameterException,
    InvalidS3ObjectException,
)

GALLERY_PREFIX = "collections/"
REPORTS_PREFIX = "reports/"
RESULTS_PREFIX = "results/"
META_COLLECTION = "collection-id"
META_EXTERNAL = "external-image-id"
_MISSING = {"404", "NoSuchKey", "NoSuchVersion", "NotFound"}


class KeyConventionError(InvalidParameterException):
    """The object's key (and metadata) name no collection: it was put in the wrong place."""


def is_permanent(exc: BaseException) -> bool:
    """True when retrying cannot help: the input itself is wrong (our 4xx errors)."""
    return isinstance(exc, FaceSearchError) and exc.http_status < 500


@dataclass(frozen=True)
class S3ObjectRef:
    """One object version as an S3 notification names it (keys arrive URL-encoded, spaces as '+')."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None

    @classmethod
    def from_notification(cls, bucket: str, raw_key: str, **kw: Any) -> S3ObjectRef:
        return cls(bucket, unquote_plus(raw_key), **kw)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}" + (f"?versionId={self.version_id}" if self.version_id else "")

    def as_image(self) -> dict[str, Any]:
        """Rekognition's ``Image`` parameter for this object (the service reads it with its own S3 client)."""
        s3: dict[str, Any] = {"Bucket": self.bucket, "Name": self.key}
        if self.version_id:
            s3["Version"] = self.version_id
        return {"S3Object": s3}

    def idempotency_key(self) -> dict[str, str]:
        """What makes a delivery "the same": bucket, key and the version (or, unversioned, the content's etag)."""
        return {"bucket": self.bucket, "key": self.key, "version": self.version_id or self.etag or ""}


@dataclass(frozen=True)
class GalleryTarget:
    collection_id: str
    external_image_id: str


def gallery_target(key: str, metadata: dict[str, str] | None = None) -> GalleryTarget:
    """Collection and ExternalImageId for a gallery object; ``KeyConventionError`` if the key doesn't say."""
    meta = {k.lower(): v for k, v in (metadata or {}).items()}
    parts = key.split("/")
    from_key = len(parts) == 4 and parts[0] + "/" == GALLERY_PREFIX and all(parts[1:])
    cid = meta.get(META_COLLECTION) or (parts[1] if from_key else None)
    external = meta.get(META_EXTERNAL) or (parts[2] if from_key else None)
    if not cid or not external:
        raise KeyConventionError(
            f"key {key!r} is outside the convention collections/<collection-id>/<external-image-id>/<file> "
            f"and its metadata names no {META_COLLECTION} and {META_EXTERNAL}"
        )
    if not COLLECTION_ID.match(cid):
        raise KeyConventionError(f"key {key!r}: {cid!r} is not a valid collection id ({COLLECTION_ID.pattern})")
    if not EXTERNAL_IMAGE_ID.match(external):
        raise KeyConventionError(
            f"key {key!r}: {external!r} is not a valid ExternalImageId ({EXTERNAL_IMAGE_ID.pattern})"
        )
    return GalleryTarget(cid, external)


def query_collection(key: str) -> str:
    """The collection a query object is searched in: ``<collection-id>/<file>``."""
    parts = key.split("/")
    if len(parts) != 2 or not all(parts) or not COLLECTION_ID.match(parts[0]):
        raise KeyConventionError(f"key {key!r} is outside the convention <collection-id>/<file>")
    return parts[0]


def report_key(gallery_key: str) -> str:
    return f"{REPORTS_PREFIX}{gallery_key}.json"


def result_key(query_key: str) -> str:
    return f"{RESULTS_PREFIX}{query_key}.json"


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    metadata: dict[str, str]
    content_type: str | None
    version_id: str | None


def inspect_image_object(client: Any, ref: S3ObjectRef, *, max_bytes: int = MAX_IMAGE_BYTES) -> ObjectInfo:
    """HEAD the object and refuse what cannot be an image before anything downloads it.

    Empty → InvalidImageFormatException; over ``max_bytes`` (Rekognition's 15 MB S3 limit) →
    ImageTooLargeException; gone (deleted after the notification) → InvalidS3ObjectException. Other S3 errors
    (throttling, 5xx, no connection) propagate: they are transient.
    """
    kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        kwargs["VersionId"] = ref.version_id
    try:
        head = client.head_object(**kwargs)
    except Exception as exc:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        if code in _MISSING:
            raise InvalidS3ObjectException(f"{ref.uri} no longer exists") from exc
        raise
    size = int(head.get("ContentLength", 0))
    if size == 0:
        raise InvalidImageFormatException(f"{ref.uri} is empty")
    if size > max_bytes:
        raise ImageTooLargeException(f"{ref.uri} is {size} bytes; the limit is {max_bytes}")
    return ObjectInfo(size, dict(head.get("Metadata") or {}), head.get("ContentType"), head.get("VersionId"))


def get_json(client: Any, bucket: str, key: str) -> Any | None:
    """A JSON object, or None when there is none (a transient error propagates)."""
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) in _MISSING:
            return None
        raise
    return json.loads(body)


def put_json(client: Any, bucket: str, key: str, document: Any) -> None:
    from facesearch.aws.protocol import dumps

    client.put_object(Bucket=bucket, Key=key, Body=dumps(document), ContentType="application/json")


__all__ = [
    "GalleryTarget",
    "KeyConventionError",
    "ObjectInfo",
    "S3ObjectRef",
    "gallery_target",
    "get_json",
    "inspect_image_object",
    "is_permanent",
    "put_json",
    "query_collection",
    "report_key",
    "result_key",
]
