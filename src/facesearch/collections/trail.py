"""Where a request is audited: the fail-closed audit trail every operation of the service goes through.

- ``_audit`` writes one record or raises ``AuditWriteError`` (no record, no result);
- ``_attempt`` wraps every public operation: a refused or failed request is recorded with its reason;
- ``_change`` wraps every change of state: an intent record before it, an outcome record after it, and a roll
  back when the outcome cannot be recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from facesearch.audit import AuditRecord, AuditSink
from facesearch.collections import validation as v
from facesearch.collections.images import MAX_S3_BYTES as MAX_IMAGE_BYTES
from facesearch.engine.types import AnalyzedImage
from facesearch.errors import AuditWriteError, FaceSearchError, typed_error

T = TypeVar("T")


@dataclass(frozen=True)
class RequestContext:
    """Who is asking and why; recorded with every search. ``caller`` is an IAM ARN in AWS, a user name locally."""

    caller: str = "local"
    purpose: str | None = None
    request_id: str | None = None


class AuditTrail:
    """Mixin of ``FaceCollectionService``: the audit sink and the clock are the service's."""

    audit: AuditSink
    clock: Callable[[], datetime]

    def _audit(
        self,
        operation: str,
        context: RequestContext | None,
        cid: str | None,
        *,
        threshold: float | None = None,
        image: AnalyzedImage | None = None,
        image_sha256: str | None = None,
        face_id: str | None = None,
        user_id: str | None = None,
        results: list[dict[str, Any]] | None = None,
        details: dict[str, Any] | None = None,
        phase: str | None = None,
        status: str = "ok",
        error: str | None = None,
        operation_id: str | None = None,
    ) -> None:
        """Write one record or raise ``AuditWriteError``: whatever the sink raises, the caller gets a typed error."""
        ctx = context or RequestContext()
        record = AuditRecord(
            operation=operation,
            caller=ctx.caller,
            collection_id=cid,
            purpose=ctx.purpose,
            request_id=ctx.request_id,
            query_image_sha256=image.image.sha256 if image else image_sha256,
            query_face_id=face_id,
            query_user_id=user_id,
            threshold=threshold,
            results=results or [],
            details=details or {},
            phase=phase,
            status=status,
            error=error,
            operation_id=operation_id,
        )
        try:
            self.audit.write(record)
        except Exception as exc:
            raise AuditWriteError(
                f"the audit record of {operation} could not be written ({type(exc).__name__}: {exc}); "
                + ("nothing was changed" if phase == "intent" else "the result is withheld")
            ) from exc

    @contextlib.contextmanager
    def _attempt(self, operation: str, context: RequestContext | None, p: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Record a refused or failed request with its reason, then re-raise: attempts to get around the floor
        (or any other rule) are as visible as the searches that succeed. The body may put what it learned
        (``image_sha256``) into the yielded dict."""
        trace: dict[str, Any] = {}
        try:
            v.known_parameters(operation, p)
            yield trace
        except Exception as exc:
            if isinstance(exc, AuditWriteError):
                raise
            if getattr(exc, "_facesearch_audited", False):
                typed = typed_error(exc)
                if typed is not None and typed is not exc:
                    raise typed from exc
                raise
            cid = p.get("CollectionId")
            self._audit(
                operation,
                context,
                cid[:255] if isinstance(cid, str) else None,
                image_sha256=trace.get("image_sha256") or _given_image_sha256(p),
                face_id=_scalar(p.get("FaceId")),
                user_id=_scalar(p.get("UserId")),
                threshold=_number(p.get(_THRESHOLD_PARAMETER.get(operation, ""))),
                details={"requested": _requested(p)},
                status=_status(exc),
                error=_reason(exc),
            )
            typed = typed_error(exc)  # an unreachable backend or a full disk reaches the caller typed
            if typed is not None and typed is not exc:
                raise typed from exc
            raise

    def _change(
        self,
        operation: str,
        context: RequestContext | None,
        cid: str | None,
        do: Callable[[], T],
        *,
        intent: dict[str, Any],
        outcome: Callable[[T], dict[str, Any]],
        undo: Callable[[T], Any] | None = None,
    ) -> T:
        """Fail closed around a change of state: intent record → change → outcome record.

        No intent record, no change. A change that fails gets a "failed" outcome. An outcome that cannot be
        recorded rolls the change back when ``undo`` is given; either way the caller gets ``AuditWriteError``,
        never success, and the intent record already names exactly what was (to be) changed.
        """
        operation_id = str(uuid.uuid4())
        self._audit(operation, context, cid, phase="intent", operation_id=operation_id, **intent)
        try:
            result = do()
        except Exception as exc:
            with contextlib.suppress(AuditWriteError):  # the change's own error is what the caller must see
                self._audit(
                    operation,
                    context,
                    cid,
                    phase="outcome",
                    operation_id=operation_id,
                    status=_status(exc),
                    error=_reason(exc),
                )
            with contextlib.suppress(AttributeError):
                exc._facesearch_audited = True  # type: ignore[attr-defined]
            raise
        try:
            self._audit(operation, context, cid, phase="outcome", operation_id=operation_id, **outcome(result))
        except AuditWriteError as exc:
            if undo is None:
                note = "the change was made; its intent record names it"
            else:
                try:
                    undo(result)
                    note = "the change was rolled back"
                except Exception as undo_exc:
                    note = f"rolling the change back failed ({undo_exc!r}); its intent record names it"
            exc.message = exc.message.rsplit("; ", 1)[0] + "; " + note
            exc.args = (exc.message,)
            raise
        return result


_THRESHOLD_PARAMETER = {
    "SearchFaces": "FaceMatchThreshold",
    "SearchFacesByDescriptor": "FaceMatchThreshold",
    "SearchFacesByImage": "FaceMatchThreshold",
    "SearchUsers": "UserMatchThreshold",
    "SearchUsersByImage": "UserMatchThreshold",
    "CompareFaces": "SimilarityThreshold",
    "CreateCollection": "FaceMatchThresholdFloor",
    "UpdateCollection": "FaceMatchThresholdFloor",
}


def _status(exc: BaseException) -> str:
    return "refused" if isinstance(exc, FaceSearchError) and exc.http_status < 500 else "failed"


def _reason(exc: BaseException) -> str:
    text = f"{exc.code}: {exc.message}" if isinstance(exc, FaceSearchError) else f"{type(exc).__name__}: {exc}"
    return text[:1000]


def _given_image_sha256(p: dict[str, Any]) -> str | None:
    """The sha256 of the photo a refused request carried, even when it was refused before the image was read:
    which photo was used to try to get around the floor is what a reviewer wants to know."""
    image = p.get("Image", p.get("SourceImage"))
    data = image.get("Bytes") if isinstance(image, dict) else None
    if isinstance(data, str):
        import base64
        import binascii

        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return None
    if isinstance(data, bytes | bytearray) and len(data) <= MAX_IMAGE_BYTES:
        return hashlib.sha256(data).hexdigest()
    return None


def _scalar(value: Any) -> str | None:
    return value[:255] if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _requested(p: dict[str, Any]) -> dict[str, Any]:
    """The request's scalar parameters, bounded, for a refusal record (never the image bytes)."""
    out: dict[str, Any] = {}
    for name, value in list(p.items())[:32]:
        if isinstance(value, bool | int | float) or value is None:
            out[str(name)[:64]] = value
        elif isinstance(value, str):
            out[str(name)[:64]] = value[:255]
        elif isinstance(value, dict) and name.endswith("Image"):
            obj = value.get("S3Object")
            out[name] = (
                {"S3Object": {k: str(obj.get(k))[:1024] for k in ("Bucket", "Name")}}
                if isinstance(obj, dict)
                else {"Bytes": "..."}
            )
        else:
            out[str(name)[:64]] = type(value).__name__
    return out
