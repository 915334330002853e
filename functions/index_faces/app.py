"""index_faces: gallery bucket → SQS → here. ObjectCreated indexes the image into the collection its key names;
ObjectRemoved deletes that image's faces; S3's test event is acknowledged.

Thin on purpose: the S3 conventions and reports are ``facesearch.aws`` (GalleryIndexer), the work is
``FaceCollectionService``. This module adds what Lambda needs: partial batch failures (one bad message does not
fail its nine neighbours), idempotency per (bucket, key, version/etag) in DynamoDB, logs with a correlation id,
EMF metrics and traces.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from facesearch.aws.powertools import emit_outcome, object_idempotency, s3_notification
from facesearch.aws.runtime import cold_start
from facesearch.aws.s3 import S3ObjectRef
from facesearch.aws.s3_events import GalleryIndexer, Outcome
from facesearch.aws.tracing import lambda_tracer
from facesearch.collections.service import RequestContext

logger = Logger()
metrics = Metrics()
tracer = lambda_tracer()  # X-Ray where tracing is active; elsewhere a no-op that imports no X-Ray SDK

# Cold start: settings checked once (a missing variable names itself here), clients and service built once.
runtime = cold_start("results_bucket", "idempotency_table", dynamodb=True)
indexer = GalleryIndexer(runtime.service, runtime.s3, runtime.settings.results_bucket or "")
processor = BatchProcessor(event_type=EventType.SQS)
idempotency, persistence = object_idempotency(runtime)


def _emit(outcome: Outcome) -> None:
    if not emit_outcome(logger, metrics, outcome, "object"):
        return
    if outcome.status == "REMOVED":
        metrics.add_metric(name="FacesDeleted", unit=MetricUnit.Count, value=len(outcome.document["DeletedFaces"]))
        return
    metrics.add_metric(name="ImagesIndexed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="FacesIndexed", unit=MetricUnit.Count, value=len(outcome.document["FaceRecords"]))
    for unindexed in outcome.document["UnindexedFaces"]:
        for reason in unindexed["Reasons"]:
            with single_metric(name="UnindexedFaces", unit=MetricUnit.Count, value=1) as metric:
                metric.add_dimension(name="Reason", value=reason)


@idempotent_function(data_keyword_argument="change", config=idempotency, persistence_store=persistence)
def index_object(change: dict[str, Any]) -> dict[str, Any]:
    """Runs once per object version: a redelivery returns the saved summary and writes no second report."""
    ref = S3ObjectRef(change["bucket"], change["key"], change.get("version_id"), change.get("etag"))
    outcome = indexer.index(ref, _context(change))
    _emit(outcome)
    return {"Status": outcome.status, "Faces": len(outcome.document.get("FaceRecords", []))}


def _context(change: dict[str, Any]) -> RequestContext:
    return RequestContext(
        caller=f"s3-upload:{change.get('principal') or 'unknown'}",
        purpose="gallery upload",
        request_id=change.get("request_id"),
    )


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    logger.set_correlation_id(record.message_id)
    notification = s3_notification(logger, metrics, record.body)
    if notification is None:
        return
    for change in notification.changes:
        ref = change.ref
        logger.append_keys(bucket=ref.bucket, key=ref.key, version_id=ref.version_id, s3_event=change.event_name)
        context = {
            **ref.idempotency_key(),
            "version_id": ref.version_id,
            "etag": ref.etag,
            "principal": change.principal_id,
            "request_id": lambda_context.aws_request_id,
        }
        if change.created:
            result = index_object(change=context)
            logger.info("processed", extra=result)
        elif change.removed:
            outcome = indexer.remove(ref, _context(context))
            _emit(outcome)
            logger.info("removed", extra={"deleted": len(outcome.document.get("DeletedFaces", []))})
        else:
            logger.warning("ignored S3 event type", extra={"event_name": change.event_name})


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
