"""search_faces: query bucket → SQS → here. Every face of the uploaded photo is searched in the collection the
key names (``<collection-id>/<file>``); the result lands at ``results/<key>.json`` in the results bucket and a
``FaceSearchCompleted`` event goes to the EventBridge bus, matches carrying ReviewRequired.

Each search is audited by the service before its result is written (S3 Object Lock sink in AWS): if the audit
record cannot be stored the search fails and SQS retries it — no unaudited result leaves this function.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
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
from facesearch.aws.s3_events import Outcome, QuerySearcher
from facesearch.aws.tracing import lambda_tracer
from facesearch.collections.service import RequestContext

logger = Logger()
metrics = Metrics()
tracer = lambda_tracer()  # X-Ray where tracing is active; elsewhere a no-op that imports no X-Ray SDK

runtime = cold_start("results_bucket", "idempotency_table", "event_bus", events=True, dynamodb=True)
searcher = QuerySearcher(runtime.service, runtime.s3, runtime.settings.results_bucket or "", runtime.events)
processor = BatchProcessor(event_type=EventType.SQS)
idempotency, persistence = object_idempotency(runtime)


def _emit(outcome: Outcome) -> None:
    if not emit_outcome(logger, metrics, outcome, "query"):
        return
    faces = outcome.document.get("SearchedFaces") or []
    metrics.add_metric(name="FacesSearched", unit=MetricUnit.Count, value=len(faces))
    metrics.add_metric(name="Matches", unit=MetricUnit.Count, value=sum(len(f["FaceMatches"]) for f in faces))


@idempotent_function(data_keyword_argument="query", config=idempotency, persistence_store=persistence)
def search_object(query: dict[str, Any]) -> dict[str, Any]:
    """Once per object version: a redelivery neither searches again nor publishes a second event."""
    ref = S3ObjectRef(query["bucket"], query["key"], query.get("version_id"), query.get("etag"))
    context = RequestContext(
        caller=f"s3-upload:{query.get('principal') or 'unknown'}",
        purpose="query upload",
        request_id=query.get("request_id"),
    )
    outcome = searcher.search(ref, context)
    _emit(outcome)
    return {"Status": outcome.status, "Faces": len(outcome.document.get("SearchedFaces", []))}


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    logger.set_correlation_id(record.message_id)
    notification = s3_notification(logger, metrics, record.body)
    if notification is None:
        return
    for change in notification.changes:
        ref = change.ref
        logger.append_keys(bucket=ref.bucket, key=ref.key, version_id=ref.version_id, s3_event=change.event_name)
        if not change.created:  # a removed query photo leaves its result in place: it records what was searched
            logger.info("ignored S3 event type", extra={"event_name": change.event_name})
            continue
        query = {
            **ref.idempotency_key(),
            "version_id": ref.version_id,
            "etag": ref.etag,
            "principal": change.principal_id,
            "request_id": lambda_context.aws_request_id,
        }
        logger.info("processed", extra=search_object(query=query))


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
