"""Rekognition's JSON 1.1 wire protocol over ``FaceCollectionService``: the one adapter behind API Gateway (the
``api`` function) and ``facesearch serve``, so a stock boto3 ``rekognition`` client works against both.

A request is ``POST /`` with ``X-Amz-Target: RekognitionService.<Operation>``, ``Content-Type:
application/x-amz-json-1.1`` and a JSON object of the operation's fields; the answer is the operation's JSON or
an AWS error shape (``{"__type": ..., "message": ...}`` plus the ``x-amzn-ErrorType`` header), always with an
``x-amzn-RequestId``. Timestamps go out as epoch seconds, as botocore's JSON parser expects.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from facesearch.collections.service import FaceCollectionService, RequestContext
from facesearch.errors import FaceSearchError

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "RekognitionService."
# API Gateway's payload limit (10 MB); Rekognition's own image limit (5 MB raw, ~6.7 MB base64) fits below it.
MAX_BODY_BYTES = 10 * 1024 * 1024

# Every operation the service has, by its Rekognition name. EraseFaces and PurgeDeletedFaces are ours (no
# Rekognition twin; a stock client cannot call them, any JSON 1.1 caller can).
OPERATIONS = (
    "CreateCollection",
    "DescribeCollection",
    "ListCollections",
    "DeleteCollection",
    "UpdateCollection",
    "IndexFaces",
    "ListFaces",
    "DeleteFaces",
    "EraseFaces",
    "PurgeDeletedFaces",
    "SearchFaces",
    "SearchFacesByImage",
    "CompareFaces",
    "DetectFaces",
    "CreateUser",
    "DeleteUser",
    "ListUsers",
    "AssociateFaces",
    "DisassociateFaces",
    "SearchUsers",
    "SearchUsersByImage",
)
# Stream processors (docs/VIDEO.md): served by facesearch.video.processors.StreamProcessorOperations.
PROCESSOR_OPERATIONS = (
    "CreateStreamProcessor",
    "DescribeStreamProcessor",
    "ListStreamProcessors",
    "StartStreamProcessor",
    "StopStreamProcessor",
    "DeleteStreamProcessor",
)


def snake_case(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


class ProtocolError(FaceSearchError):
    """A request that never reached an operation: wrong target, content type, JSON or size."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = status


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dumps(document: Any) -> bytes:
    return json.dumps(document, default=_default, separators=(",", ":")).encode()


class RekognitionProtocol:
    """``handle`` turns one HTTP request (already read) into one HTTP response; it never raises."""

    def __init__(
        self, service: FaceCollectionService, *, processors: Any | None = None, max_body_bytes: int = MAX_BODY_BYTES
    ) -> None:
        """``processors`` (a ``StreamProcessorOperations``) serves the stream-processor operations; without it
        they answer ``UnknownOperationException`` like any operation this endpoint does not serve."""
        self.service = service
        self.max_body_bytes = max_body_bytes
        # Operations whose method takes ``context`` are audited: they get the caller and the request id.
        self._methods = {op: getattr(service, snake_case(op)) for op in OPERATIONS}
        if processors is not None:
            self._methods |= {op: getattr(processors, snake_case(op)) for op in PROCESSOR_OPERATIONS}
        self._audited = {op for op, m in self._methods.items() if "context" in inspect.signature(m).parameters}

    def handle(
        self,
        *,
        target: str | None,
        content_type: str | None,
        body: bytes | None,
        caller: str = "anonymous",
        purpose: str | None = None,
        request_id: str | None = None,
    ) -> Response:
        request_id = request_id or str(uuid.uuid4())
        operation = "?"
        try:
            operation = self.operation(target)
            params = self.parse(content_type, body)
            context = RequestContext(caller=caller, purpose=purpose, request_id=request_id)
            method = self._methods[operation]
            result = method(context=context, **params) if operation in self._audited else method(**params)
            return Response(200, dumps(result), self._headers(request_id))
        except FaceSearchError as exc:
            log.info("%s %s -> %s: %s", request_id, operation, exc.code, exc.message)
            return self.error(exc.code, exc.http_status, exc.message, request_id)
        except Exception:  # a bug or an unreachable store: logged with its trace, the caller gets no internals
            log.exception("%s %s failed", request_id, operation)
            return self.error("InternalServerError", 500, "Internal server error", request_id)

    def operation(self, target: str | None) -> str:
        if not target:
            raise ProtocolError("UnknownOperationException", 400, "missing X-Amz-Target header")
        name = target.removeprefix(TARGET_PREFIX)
        if not target.startswith(TARGET_PREFIX) or name not in self._methods:
            raise ProtocolError("UnknownOperationException", 400, f"unknown operation {target}")
        return name

    def parse(self, content_type: str | None, body: bytes | None) -> dict[str, Any]:
        media = (content_type or "").split(";")[0].strip().lower()
        if media != CONTENT_TYPE:
            raise ProtocolError(
                "UnsupportedMediaTypeException", 415, f"Content-Type must be {CONTENT_TYPE}, got {content_type!r}"
            )
        body = body or b"{}"
        if len(body) > self.max_body_bytes:
            raise ProtocolError(
                "RequestEntityTooLargeException", 413, f"body is {len(body)} bytes; the limit is {self.max_body_bytes}"
            )
        try:
            params = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProtocolError("SerializationException", 400, f"body is not valid JSON: {exc}") from None
        if not isinstance(params, dict):
            raise ProtocolError("SerializationException", 400, "body must be a JSON object")
        if "context" in params:
            raise ProtocolError("SerializationException", 400, "unknown field: context")
        return params

    @staticmethod
    def _headers(request_id: str) -> dict[str, str]:
        return {"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id}

    def error(self, code: str, status: int, message: str, request_id: str) -> Response:
        body = {"__type": code, "Code": code, "message": message, "Message": message}
        return Response(status, dumps(body), {**self._headers(request_id), "x-amzn-ErrorType": code})


def caller_from_authorization(authorization: str | None) -> str | None:
    """The access key id of a SigV4 ``Authorization`` header (serve has no IAM: who signed is all it knows)."""
    match = re.search(r"Credential=([^/,\s]+)/", authorization or "")
    return match.group(1) if match else None


def signing_scope_service(authorization: str | None) -> str | None:
    """The service a SigV4 signature was made for: ``Credential=AKID/date/region/<service>/aws4_request``."""
    match = re.search(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request", authorization or "")
    return match.group(1) if match else None


__all__ = [
    "CONTENT_TYPE",
    "MAX_BODY_BYTES",
    "OPERATIONS",
    "PROCESSOR_OPERATIONS",
    "RekognitionProtocol",
    "Response",
    "snake_case",
]
