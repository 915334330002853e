"""Stream processors: Rekognition's Create/Describe/List/Start/Stop/DeleteStreamProcessor over our frames streams.

A processor says, for one frames stream, where its results go and which collection its faces are searched in at
which threshold. Request and response shapes are Rekognition's (botocore's ``rekognition`` service model), with
one difference in meaning: ``Input.KinesisVideoStream.Arn`` — where Rekognition takes a Kinesis *Video* stream —
takes the ARN of our frames stream, a Kinesis *Data* stream of frame records (docs/VIDEO.md). ``Output`` is
``KinesisDataStream.Arn``; ``Settings.FaceSearch`` is ``{CollectionId, FaceMatchThreshold}``, the threshold
checked against the collection's floor through the service (``DescribeCollection``'s FaceMatchThresholdFloor).

One processor per input stream (a second is ResourceInUseException): the ``match_frames`` consumer looks the
processor up by the ARN of the stream its records come from. Every change is audited through the service's
trail (intent → change → outcome), like collection changes. Processors live in a :class:`ProcessorRegistry`:
a JSON file under ``FACESEARCH_HOME`` here, a DynamoDB table in AWS (``facesearch.aws.video``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from facesearch.collections.service import FaceCollectionService, RequestContext
from facesearch.errors import (
    InvalidParameterException,
    ResourceInUseException,
    ResourceNotFoundException,
)

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_.\-]{1,128}$")
KINESIS_ARN = re.compile(r"^arn:aws[a-z\-]*:kinesis(video)?:[a-z0-9\-]+:\d{12}:stream/[a-zA-Z0-9_.\-]+(/.*)?$")
STOPPED, RUNNING = "STOPPED", "RUNNING"
MAX_LIST = 100
DEFAULT_THRESHOLD = 80.0  # Rekognition's default FaceMatchThreshold for a stream processor


def stream_arn(arn: str) -> str:
    """The stream of an ARN that may name one of its consumers (``…:stream/NAME/consumer/C:123``): records that
    reach Lambda through an enhanced fan-out consumer carry either, depending on the service."""
    head, sep, rest = arn.partition(":stream/")
    return head + sep + rest.split("/", 1)[0] if sep else arn


def stream_name(arn: str) -> str:
    return stream_arn(arn).rsplit(":stream/", 1)[-1]


class ProcessorRegistry(Protocol):
    """Where processors are kept. Documents are Describe-shaped dicts (timestamps as ISO strings)."""

    def get(self, name: str) -> dict[str, Any] | None: ...

    def put(self, doc: dict[str, Any], *, create: bool) -> None:
        """``create``: fail with ResourceInUseException when the name exists."""

    def delete(self, name: str) -> bool: ...

    def all(self) -> list[dict[str, Any]]: ...


class FileProcessorRegistry:
    """Processors in one JSON file (``FACESEARCH_HOME/stream_processors.json``), guarded by an flock so two local
    processes (the API and a consumer) do not lose each other's writes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, Any]]]:
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data: dict[str, dict[str, Any]] = json.loads(self.path.read_text()) if self.path.exists() else {}
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
                os.replace(tmp, self.path)

    def get(self, name: str) -> dict[str, Any] | None:
        with self._locked() as data:
            return data.get(name)

    def put(self, doc: dict[str, Any], *, create: bool) -> None:
        with self._locked() as data:
            if create and doc["Name"] in data:
                raise ResourceInUseException(f"stream processor {doc['Name']} already exists")
            data[doc["Name"]] = doc

    def delete(self, name: str) -> bool:
        with self._locked() as data:
            return data.pop(name, None) is not None

    def all(self) -> list[dict[str, Any]]:
        with self._locked() as data:
            return list(data.values())


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


class StreamProcessorOperations:
    """The six operations, Rekognition-shaped, over a registry; the service validates collections and audits."""

    def __init__(
        self,
        service: FaceCollectionService,
        registry: ProcessorRegistry,
        *,
        frames_stream: str | None = None,
        results_stream: str | None = None,
    ) -> None:
        """``frames_stream``/``results_stream`` (stream names; a deployment's FACESEARCH_FRAMES_STREAM and
        FACESEARCH_RESULTS_STREAM): when given, a processor must read that stream and write that one — the only
        ones match_frames is mapped to and may write — instead of being accepted and never running."""
        self.service = service
        self.registry = registry
        self.frames_stream = frames_stream
        self.results_stream = results_stream

    # -- helpers -------------------------------------------------------------------------------------------------
    @staticmethod
    def _name(p: dict[str, Any]) -> str:
        name = p.get("Name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise InvalidParameterException("Name must be 1-128 characters of [a-zA-Z0-9_.-]")
        return name

    def _get(self, name: str) -> dict[str, Any]:
        doc = self.registry.get(name)
        if doc is None:
            raise ResourceNotFoundException(f"stream processor {name} not found")
        return doc

    @staticmethod
    def _arn(value: Any, what: str) -> str:
        if not isinstance(value, str) or not KINESIS_ARN.match(value):
            raise InvalidParameterException(f"{what} must be a Kinesis stream ARN, got {value!r}")
        return value

    def _face_search(self, settings: Any) -> dict[str, Any]:
        fs = settings.get("FaceSearch") if isinstance(settings, dict) else None
        if not isinstance(fs, dict) or not isinstance(fs.get("CollectionId"), str):
            raise InvalidParameterException("Settings.FaceSearch.CollectionId is required")
        unknown = set(fs) - {"CollectionId", "FaceMatchThreshold"}
        if unknown:
            raise InvalidParameterException(f"unknown Settings.FaceSearch field(s): {', '.join(sorted(unknown))}")
        described = self.service.describe_collection(CollectionId=fs["CollectionId"])  # ResourceNotFound if unknown
        floor = float(described["FaceMatchThresholdFloor"])
        # Unset: the collection's default threshold (its false-candidate budget's), as a search would use.
        threshold = fs.get(
            "FaceMatchThreshold", max(DEFAULT_THRESHOLD, floor, described.get("DefaultFaceMatchThreshold", 0))
        )
        if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not 0 <= threshold <= 100:
            raise InvalidParameterException("FaceMatchThreshold must be a number between 0 and 100")
        if threshold < floor:
            raise InvalidParameterException(
                f"FaceMatchThreshold {threshold} is below collection {fs['CollectionId']}'s floor of {floor}"
            )
        return {"CollectionId": fs["CollectionId"], "FaceMatchThreshold": float(threshold)}

    def _change(self, operation: str, context: RequestContext | None, doc: dict[str, Any], do: Any) -> Any:
        cid = doc.get("Settings", {}).get("FaceSearch", {}).get("CollectionId")
        details = {"stream_processor": doc.get("Name"), "status": doc.get("Status")}
        return self.service._change(
            operation,
            context,
            cid,
            do,
            intent={"details": details},
            outcome=lambda _: {"details": details},
        )

    # -- operations ----------------------------------------------------------------------------------------------
    def create_stream_processor(self, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        name = self._name(p)
        # Rekognition's other fields (Tags, NotificationChannel, KmsKeyId, RegionsOfInterest, DataSharingPreference)
        # are refused rather than silently ignored: the caller would believe they apply.
        unknown = set(p) - {"Name", "Input", "Output", "Settings", "RoleArn"}
        if unknown:
            raise InvalidParameterException(f"not supported by facesearch: {', '.join(sorted(unknown))}")
        source = self._arn(
            (p.get("Input") or {}).get("KinesisVideoStream", {}).get("Arn"), "Input.KinesisVideoStream.Arn"
        )
        sink = self._arn(
            (p.get("Output") or {}).get("KinesisDataStream", {}).get("Arn"), "Output.KinesisDataStream.Arn"
        )
        for arn, expected, what in ((source, self.frames_stream, "Input"), (sink, self.results_stream, "Output")):
            if expected and stream_name(arn) != expected:
                raise InvalidParameterException(f"{what} must be this deployment's stream {expected}, got {arn}")
        role = p.get("RoleArn")
        if not isinstance(role, str) or not role.startswith("arn:"):
            raise InvalidParameterException("RoleArn is required")
        face_search = self._face_search(p.get("Settings"))
        source = stream_arn(source)
        for other in self.registry.all():
            if other["Name"] != name and other["Input"]["KinesisVideoStream"]["Arn"] == source:
                raise ResourceInUseException(f"stream {source} already has stream processor {other['Name']}")
        now = _now()
        doc = {
            "Name": name,
            "StreamProcessorArn": f"{self.service.arn_prefix}:streamprocessor/{name}",
            "Status": STOPPED,
            "StatusMessage": "created",
            "CreationTimestamp": now,
            "LastUpdateTimestamp": now,
            "Input": {"KinesisVideoStream": {"Arn": source}},
            "Output": {"KinesisDataStream": {"Arn": sink}},
            "RoleArn": role,
            "Settings": {"FaceSearch": face_search},
        }
        self._change("CreateStreamProcessor", context, doc, lambda: self.registry.put(doc, create=True))
        return {"StreamProcessorArn": doc["StreamProcessorArn"]}

    def describe_stream_processor(self, **p: Any) -> dict[str, Any]:
        doc = dict(self._get(self._name(p)))
        doc["CreationTimestamp"] = _dt(doc["CreationTimestamp"])
        doc["LastUpdateTimestamp"] = _dt(doc["LastUpdateTimestamp"])
        return doc

    def list_stream_processors(self, **p: Any) -> dict[str, Any]:
        limit = p.get("MaxResults", MAX_LIST)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise InvalidParameterException(f"MaxResults must be 1..{MAX_LIST}")
        names = sorted(d["Name"] for d in self.registry.all())
        token = p.get("NextToken")
        if token is not None:
            names = [n for n in names if n > token]
        page = names[:limit]
        docs = {d["Name"]: d for d in self.registry.all()}
        out: dict[str, Any] = {
            "StreamProcessors": [{"Name": n, "Status": docs[n]["Status"]} for n in page if n in docs]
        }
        if len(names) > limit:
            out["NextToken"] = page[-1]
        return out

    def _set_status(self, operation: str, context: RequestContext | None, name: str, status: str) -> None:
        doc = dict(self._get(name))
        doc.update(Status=status, StatusMessage=operation, LastUpdateTimestamp=_now())
        self._change(operation, context, doc, lambda: self.registry.put(doc, create=False))

    def start_stream_processor(self, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        """Our consumer reads frames as they arrive, so RUNNING is immediate (no STARTING phase). Rekognition's
        StartSelector/StopSelector (Kinesis *Video* fragments) have no meaning for a data stream."""
        name = self._name(p)
        unknown = set(p) - {"Name", "StartSelector", "StopSelector"}
        if unknown or p.get("StartSelector") or p.get("StopSelector"):
            raise InvalidParameterException("StartSelector/StopSelector apply to Kinesis video streams only")
        doc = self._get(name)
        # The collection may have been deleted or its floor raised since the processor was created: checked again.
        self._face_search(doc["Settings"])
        self._set_status("StartStreamProcessor", context, name, RUNNING)
        return {}

    def stop_stream_processor(self, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        self._set_status("StopStreamProcessor", context, self._name(p), STOPPED)
        return {}

    def delete_stream_processor(self, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        name = self._name(p)
        doc = self._get(name)
        if doc["Status"] == RUNNING:
            raise ResourceInUseException(f"stream processor {name} is running: stop it first")
        self._change("DeleteStreamProcessor", context, doc, lambda: self.registry.delete(name))
        return {}

    # -- for the consumer ----------------------------------------------------------------------------------------
    def for_stream(self, arn: str) -> dict[str, Any] | None:
        """The processor whose input is the stream of ``arn`` (a stream or consumer ARN), or None."""
        source = stream_arn(arn)
        for doc in self.registry.all():
            if doc["Input"]["KinesisVideoStream"]["Arn"] == source:
                return doc
        return None


# Public methods that are not API operations (the consumer's lookup).
IN_PROCESS_ONLY = frozenset({"for_stream"})

OPERATIONS = (
    "CreateStreamProcessor",
    "DescribeStreamProcessor",
    "ListStreamProcessors",
    "StartStreamProcessor",
    "StopStreamProcessor",
    "DeleteStreamProcessor",
)

__all__ = [
    "IN_PROCESS_ONLY",
    "OPERATIONS",
    "RUNNING",
    "STOPPED",
    "FileProcessorRegistry",
    "ProcessorRegistry",
    "StreamProcessorOperations",
    "stream_arn",
    "stream_name",
]
