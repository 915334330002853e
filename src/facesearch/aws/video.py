"""The ``match_frames`` consumer's AWS side: camera state and stream processors in DynamoDB, result records to
Kinesis, match events to EventBridge, and the per-batch logic the handler drives (docs/VIDEO.md, "match_frames").

One DynamoDB table (``FACESEARCH_STATE_TABLE``, partition key ``pk``) holds both, by key prefix:
``camera#<source id>`` (the camera's track state, ``last_frame``, ``last_ts``, TTL attribute ``expires_at``) and
``processor#<name>`` (a stream processor's Describe document). Clients are passed in; nothing here imports boto3.

Delivery semantics, per batch of Kinesis records:
- each camera's state is read once (consistent read) and written once after the batch, conditionally on the
  ``last_frame`` it was read with: a second container that advanced the camera meanwhile makes the write fail
  (:class:`CameraStateConflict`, transient: the batch is retried and the redelivered frames are duplicates);
- result records are PutRecords'd after the batch, before the states are saved (only failed entries retried);
- the first transient failure in a batch fails every later record of the batch unprocessed, so Lambda's
  checkpoint (the lowest failed sequence number) never lets a later frame advance a camera past a lost one;
- a frame whose number is not above the camera's ``last_frame`` is a duplicate (redelivery) or late: skipped and
  counted; unless its producer timestamp is newer than the camera's last one, which means the camera restarted its
  numbering: the camera gets a fresh state (counted as ``CameraRestarts``).
The one window that can double a result: a crash after PutRecords succeeded and before the state write.
Records carry SourceId and FrameNumber, so a reader can drop such a repeat.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from facesearch.aws.events import EventPublisher
from facesearch.aws.processors import DynamoDBProcessorRegistry
from facesearch.collections.service import FaceCollectionService, RequestContext
from facesearch.errors import InvalidImageFormatException
from facesearch.video.frames import FrameRecordError
from facesearch.video.matcher import CameraState, FrameMatcher, VideoFrame, frame_from_record, state_to_dict
from facesearch.video.processors import RUNNING, StreamProcessorOperations, stream_name
from facesearch.video.records import frame_record
from facesearch.video.search import TrackSearcher

CAMERA_PREFIX = "camera#"
TRACK_MATCHED = "FaceTrackMatched"
PUT_RECORDS_MAX = 500
PUT_ATTEMPTS = 5


class CameraStateConflict(RuntimeError):
    """Another container wrote this camera's state after we read it: transient, the batch is retried."""


class ResultsNotWritten(RuntimeError):
    """PutRecords still failed some result records after the retries: transient, the batch is retried."""


class BatchAborted(RuntimeError):
    """An earlier record of this batch failed transiently; this one is left for the redelivery."""


# -- camera state in DynamoDB --------------------------------------------------------------------------------------
@dataclass
class LoadedCamera:
    state: CameraState
    expected_last_frame: int | None  # what the stored item says (the condition of our write); None: no item
    last_ts: float | None = None
    # The state as of the last frame processed completely (what is saved): a failure halfway through a frame
    # leaves the live state half-updated, and saving that would skip the failed frame on redelivery.
    snapshot: dict[str, Any] | None = None


class DynamoDBCameraStates:
    def __init__(self, client: Any, table: str, matcher: FrameMatcher, *, ttl_seconds: int = 3600) -> None:
        self.client = client
        self.table = table
        self.matcher = matcher
        self.ttl_seconds = ttl_seconds

    def load(self, source_id: str) -> LoadedCamera:
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": CAMERA_PREFIX + source_id}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return LoadedCamera(self.matcher.new_state(), None)
        expected = int(item["last_frame"]["N"])
        expired = int(item["expires_at"]["N"]) < time.time()  # TTL deletion lags; an expired state is not used
        if expired:
            return LoadedCamera(self.matcher.new_state(), expected)
        state = self.matcher.restore_state(json.loads(item["state"]["S"]))
        return LoadedCamera(state, expected, float(item["last_ts"]["N"]))

    def save(self, source_id: str, camera: LoadedCamera) -> None:
        """Write the camera's last complete snapshot (or its live state when it has none and a last frame)."""
        snapshot = camera.snapshot
        if snapshot is None and camera.state.last_frame is not None:
            snapshot = state_to_dict(camera.state)
        if snapshot is None or snapshot["last_frame"] is None:
            return
        args: dict[str, Any] = {
            "TableName": self.table,
            "Item": {
                "pk": {"S": CAMERA_PREFIX + source_id},
                "state": {"S": json.dumps(snapshot)},
                "last_frame": {"N": str(snapshot["last_frame"])},
                "last_ts": {"N": repr(camera.last_ts or 0.0)},
                "expires_at": {"N": str(int(time.time()) + self.ttl_seconds)},
            },
        }
        if camera.expected_last_frame is None:
            args["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            args["ConditionExpression"] = "last_frame = :f"
            args["ExpressionAttributeValues"] = {":f": {"N": str(camera.expected_last_frame)}}
        try:
            self.client.put_item(**args)
        except self.client.exceptions.ConditionalCheckFailedException:
            raise CameraStateConflict(f"camera {source_id} was advanced by another consumer") from None


# -- results to Kinesis --------------------------------------------------------------------------------------------
def put_results(kinesis: Any, stream: str, records: list[tuple[str, dict[str, Any]]]) -> None:
    """PutRecords in chunks, retrying only the entries a response marks failed; ResultsNotWritten at the end."""
    for start in range(0, len(records), PUT_RECORDS_MAX):
        pending = [
            {"PartitionKey": key, "Data": json.dumps(doc, default=str).encode()}
            for key, doc in records[start : start + PUT_RECORDS_MAX]
        ]
        for attempt in range(PUT_ATTEMPTS):
            out = kinesis.put_records(StreamName=stream, Records=pending)
            if not out.get("FailedRecordCount"):
                break
            pending = [e for e, r in zip(pending, out["Records"], strict=True) if r.get("ErrorCode")]
            time.sleep(min(2.0, 0.05 * 2**attempt))
        else:
            raise ResultsNotWritten(f"{len(pending)} result record(s) not accepted by {stream}")


# -- the batch -----------------------------------------------------------------------------------------------------
@dataclass
class RecordOutcome:
    """What happened to one record: ``Processed`` or why not (the handler turns it into a metric)."""

    kind: str
    source_id: str | None = None
    frame_number: int | None = None
    reason: str | None = None
    searches: int = 0
    events: int = 0


@dataclass
class _Processor:
    doc: dict[str, Any] | None  # None: the stream has no processor (cached too, so a scan is not made per record)
    searcher: TrackSearcher | None
    loaded_at: float


@dataclass
class FrameConsumer:
    """match_frames' logic, one instance per container; ``begin`` / ``handle`` per record / ``finish``."""

    matcher: FrameMatcher
    service: FaceCollectionService
    processors: StreamProcessorOperations
    states: DynamoDBCameraStates
    kinesis: Any
    events: EventPublisher | None = None
    max_frame_age: float = 60.0
    cache_seconds: float = 5.0
    clock: Callable[[], float] = time.time
    _cache: dict[str, _Processor] = field(default_factory=dict)
    _cameras: dict[str, LoadedCamera] = field(default_factory=dict)
    _results: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=lambda: defaultdict(list))
    _aborted: bool = False

    def begin(self) -> None:
        self._cameras, self._results, self._aborted = {}, defaultdict(list), False

    def processor_for(self, source_arn: str) -> _Processor:
        """The stream's processor (``doc`` None when it has none), re-read after ``cache_seconds``: a Stop takes
        effect within that."""
        now = time.monotonic()
        hit = self._cache.get(source_arn)
        if hit is not None and now - hit.loaded_at < self.cache_seconds:
            return hit
        doc = self.processors.for_stream(source_arn)
        searcher = None
        if doc is not None and doc["Status"] == RUNNING:
            if hit is not None and hit.doc is not None and hit.doc["Settings"] == doc["Settings"]:
                searcher = hit.searcher
            if searcher is None:
                fs = doc["Settings"]["FaceSearch"]
                context = RequestContext(
                    caller=f"stream-processor:{doc['Name']}", purpose="stream processor face search"
                )
                searcher = TrackSearcher(
                    self.service, fs["CollectionId"], threshold=fs["FaceMatchThreshold"], context=context
                )
        self._cache[source_arn] = _Processor(doc, searcher, now)
        return self._cache[source_arn]

    def handle(self, data: bytes, source_arn: str) -> RecordOutcome:
        if self._aborted:
            raise BatchAborted("an earlier record of this batch failed; left for the redelivery")
        try:
            return self._handle(data, source_arn)
        except Exception:
            self._aborted = True
            raise

    def _handle(self, data: bytes, source_arn: str) -> RecordOutcome:
        processor = self.processor_for(source_arn)
        if processor.doc is None:
            return RecordOutcome("NoProcessor", reason=f"no stream processor has input {source_arn}")
        if processor.doc["Status"] != RUNNING or processor.searcher is None:
            return RecordOutcome("ProcessorStopped", reason=processor.doc["Name"])
        try:
            frame = frame_from_record(data)
        except (FrameRecordError, InvalidImageFormatException) as exc:
            return RecordOutcome("BadRecord", reason=f"{type(exc).__name__}: {exc}")
        out = RecordOutcome("Processed", frame.source_id, frame.frame_number)
        ts = frame.producer_timestamp or 0.0
        if self.clock() - ts > self.max_frame_age:
            out.kind, out.reason = "StaleFrame", f"{self.clock() - ts:.1f} s old"
            return out
        camera = self._camera(frame.source_id)
        last = camera.state.last_frame
        if last is not None and frame.frame_number <= last:
            if camera.last_ts is not None and ts > camera.last_ts:
                camera.state = self.matcher.new_state()  # numbering restarted: a new session of the camera
                out.reason = "camera restarted its frame numbering"
            else:
                out.kind = "DuplicateFrame"
                return out
        self._process(frame, camera, processor, out)
        camera.last_ts, camera.snapshot = ts, state_to_dict(camera.state)
        return out

    def _camera(self, source_id: str) -> LoadedCamera:
        if source_id not in self._cameras:
            self._cameras[source_id] = self.states.load(source_id)
        return self._cameras[source_id]

    def _process(self, frame: VideoFrame, camera: LoadedCamera, processor: _Processor, out: RecordOutcome) -> None:
        assert processor.searcher is not None and processor.doc is not None
        state = camera.state
        result = self.matcher.process(frame, state)
        threshold = processor.doc["Settings"]["FaceSearch"]["FaceMatchThreshold"]
        for track in result.to_search:
            matches = processor.searcher.search(frame, track)
            self.matcher.apply_search(state, track, matches, frame.frame_number)
            out.searches += 1
            best = matches[0] if matches else None
            if best and best["Similarity"] >= threshold and not track.info.get("announced"):
                if self.events is not None:
                    self.events.publish(TRACK_MATCHED, match_detail(processor.doc, frame, track.track_id, best))
                    out.events += 1
                track.info["announced"] = True
        output = stream_name(processor.doc["Output"]["KinesisDataStream"]["Arn"])
        self._results[output].append((frame.source_id, frame_record(result)))

    def finish(self) -> dict[str, int]:
        """Write the batch's results, then the camera states (only when every result is in)."""
        written = 0
        for stream, records in self._results.items():
            put_results(self.kinesis, stream, records)
            written += len(records)
        for source_id, camera in self._cameras.items():
            if camera.snapshot is not None:
                self.states.save(source_id, camera)
        return {"ResultRecords": written}


def match_detail(processor: dict[str, Any], frame: VideoFrame, track_id: int, best: dict[str, Any]) -> dict[str, Any]:
    """The detail of ``FaceTrackMatched``: which processor, camera, frame and track, and the match."""
    face = best["Face"]
    return {
        "StreamProcessorName": processor["Name"],
        "CollectionId": processor["Settings"]["FaceSearch"]["CollectionId"],
        "SourceId": frame.source_id,
        "FrameNumber": frame.frame_number,
        "ProducerTimestamp": frame.producer_timestamp,
        "TrackId": track_id,
        "Similarity": best["Similarity"],
        "ReviewRequired": best.get("ReviewRequired", True),
        "Face": {k: face.get(k) for k in ("FaceId", "ImageId", "ExternalImageId", "UserId") if face.get(k)},
    }


__all__ = [
    "TRACK_MATCHED",
    "BatchAborted",
    "CameraStateConflict",
    "DynamoDBCameraStates",
    "DynamoDBProcessorRegistry",
    "FrameConsumer",
    "RecordOutcome",
    "ResultsNotWritten",
    "match_detail",
    "put_results",
]
