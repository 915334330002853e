"""match_frames: frames stream → (enhanced fan-out consumer) → here → results stream, EventBridge on a track's
first match. Thin on purpose: the per-batch logic is ``facesearch.aws.video.FrameConsumer`` (docs/VIDEO.md).

Per record: a bad record (no header, corrupt JPEG, oversized), a stale or duplicate frame, a stopped processor or
a stream without one is acknowledged, logged and counted (``Errors{Kind}``, ``SkippedFrames{Reason}``); a transient
failure (store, DynamoDB, search) fails this record and every later one of the batch, so Lambda retries from it
(bisecting, then the on-failure destination). Results and camera states are written after the batch; if that
fails the whole batch is retried.
"""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from facesearch.aws.runtime import cold_start
from facesearch.aws.video import DynamoDBCameraStates, FrameConsumer
from facesearch.video.matcher import FrameMatcher
from facesearch.wiring import build_processors

logger = Logger()
metrics = Metrics()
tracer = Tracer()

runtime = cold_start("state_table", events=True, dynamodb=True, kinesis=True)
settings = runtime.settings
matcher = FrameMatcher(runtime.service.engine)  # type: ignore[arg-type]  # the lazy engine loads on first frame
consumer = FrameConsumer(
    matcher=matcher,
    service=runtime.service,
    processors=build_processors(settings, runtime.service, dynamodb=runtime.dynamodb),
    states=DynamoDBCameraStates(
        runtime.dynamodb, settings.state_table or "", matcher, ttl_seconds=settings.camera_state_ttl_seconds
    ),
    kinesis=runtime.kinesis,
    events=runtime.events,
    max_frame_age=settings.max_frame_age_seconds,
    cache_seconds=settings.processor_cache_seconds,
)
processor = BatchProcessor(event_type=EventType.KinesisDataStreams)

SKIPS = {"StaleFrame", "DuplicateFrame", "ProcessorStopped", "NoProcessor"}


def _count(name: str, dimension: str, value: str) -> None:
    with single_metric(name=name, unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name=dimension, value=value)


@tracer.capture_method
def record_handler(record: KinesisStreamRecord) -> None:
    data = base64.b64decode(record.kinesis.data)
    out = consumer.handle(data, record.event_source_arn)
    where = {"sequence_number": record.kinesis.sequence_number, "source_id": out.source_id, "frame": out.frame_number}
    if out.kind == "BadRecord":
        logger.error("bad frame record, not retried", extra={**where, "reason": out.reason, "bytes": len(data)})
        _count("Errors", "Kind", "BadRecord")
    elif out.kind in SKIPS:
        (logger.warning if out.kind == "NoProcessor" else logger.info)("frame skipped", extra={**where, **vars(out)})
        _count("SkippedFrames", "Reason", out.kind)
    else:
        metrics.add_metric(name="FramesProcessed", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="TrackSearches", unit=MetricUnit.Count, value=out.searches)
        if out.events:
            metrics.add_metric(name="TrackMatchEvents", unit=MetricUnit.Count, value=out.events)
        if out.reason:
            logger.info(out.reason, extra=where)
            metrics.add_metric(name="CameraRestarts", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    consumer.begin()
    with processor(event["Records"], record_handler, lambda_context=context):
        processor.process()
    written = consumer.finish()  # raises (whole batch retried) if results or states cannot be written
    metrics.add_metric(name="ResultRecords", unit=MetricUnit.Count, value=written["ResultRecords"])
    return processor.response()
