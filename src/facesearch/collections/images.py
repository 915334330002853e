"""Resolve Rekognition's ``Image`` parameter ({"Bytes": ...} or {"S3Object": {...}}) to raw bytes."""

from __future__ import annotations

import base64
from typing import Any

from facesearch.engine.decode import MAX_IMAGE_BYTES
from facesearch.errors import ImageTooLargeException, InvalidParameterException, InvalidS3ObjectException

# Rekognition: 5 MB as raw bytes in the request, 15 MB when read from S3.
MAX_INLINE_BYTES = 5 * 1024 * 1024


def image_bytes(image: Any, s3_client: Any | None, name: str = "Image") -> tuple[bytes, str]:
    """(bytes, source) where source is an s3:// URI or "bytes"; raises Rekognition's errors."""
    if not isinstance(image, dict) or ("Bytes" in image) == ("S3Object" in image):
        raise InvalidParameterException(f"{name} must have exactly one of Bytes or S3Object")
    if "Bytes" in image:
        data = image["Bytes"]
        if isinstance(data, str):  # JSON callers send base64, as the Rekognition wire format does
            try:
                data = base64.b64decode(data, validate=True)
            except ValueError as exc:
                raise InvalidParameterException(f"{name}.Bytes is not valid base64") from exc
        if not isinstance(data, bytes | bytearray):
            raise InvalidParameterException(f"{name}.Bytes must be bytes")
        if len(data) > MAX_INLINE_BYTES:
            raise ImageTooLargeException(f"{name}.Bytes is {len(data)} bytes; the limit is {MAX_INLINE_BYTES}")
        return bytes(data), "bytes"
    obj = image["S3Object"]
    if not isinstance(obj, dict) or not obj.get("Bucket") or not obj.get("Name"):
        raise InvalidParameterException(f"{name}.S3Object needs Bucket and Name")
    if s3_client is None:
        raise InvalidS3ObjectException("this service has no S3 client configured; send Image.Bytes instead")
    kwargs = {"Bucket": obj["Bucket"], "Key": obj["Name"]}
    if obj.get("Version"):
        kwargs["VersionId"] = obj["Version"]
    uri = f"s3://{obj['Bucket']}/{obj['Name']}"
    try:
        head = s3_client.head_object(**kwargs)
        if head.get("ContentLength", 0) > MAX_IMAGE_BYTES:
            raise ImageTooLargeException(f"{uri} is {head['ContentLength']} bytes; the limit is {MAX_IMAGE_BYTES}")
        body = s3_client.get_object(**kwargs)["Body"].read()
    except ImageTooLargeException:
        raise
    except Exception as exc:  # botocore ClientError and friends: report, never leak credentials
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise InvalidS3ObjectException(f"unable to get object {uri}: {code}") from exc
    return body, uri + (f"?versionId={obj['Version']}" if obj.get("Version") else "")
