"""What the two S3-fed handlers share on top of Powertools: idempotency per object version and the metrics of an
outcome. Kept here so index_faces and search_faces stay thin and cannot drift apart."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from facesearch.aws.runtime import FunctionRuntime
from facesearch.aws.s3_events import MalformedMessageError, Outcome, S3Notification, parse_s3_message

# Kept as long as SQS may keep a message (14 days at most), so any redelivery finds it.
IDEMPOTENCY_SECONDS = 14 * 86400


def object_idempotency(runtime: FunctionRuntime) -> tuple[IdempotencyConfig, DynamoDBPersistenceLayer]:
    """Each (bucket, key, version or eTag) is processed once; the record lives in the stack's DynamoDB table."""
    config = IdempotencyConfig(
        event_key_jmespath="[bucket, key, version]",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=IDEMPOTENCY_SECONDS,
    )
    persistence = DynamoDBPersistenceLayer(
        table_name=runtime.settings.idempotency_table or "", boto3_client=runtime.dynamodb
    )
    return config, persistence


def emit_outcome(logger: Logger, metrics: Metrics, outcome: Outcome, what: str) -> bool:
    """A permanent failure: an error log line, ``PermanentFailures`` and ``Errors{Kind}``; otherwise the stage
    latencies. Returns whether the outcome succeeded (the caller adds its own counts)."""
    if outcome.failed:
        logger.error(f"{what} failed permanently", extra={"error": outcome.document.get("Error")})
        metrics.add_metric(name="PermanentFailures", unit=MetricUnit.Count, value=1)
        with single_metric(name="Errors", unit=MetricUnit.Count, value=1) as metric:
            metric.add_dimension(name="Kind", value=outcome.error_code or "Unknown")
        return False
    for stage, ms in outcome.timings_ms.items():
        metrics.add_metric(name=f"{stage}Latency", unit=MetricUnit.Milliseconds, value=ms)
    return True


def s3_notification(logger: Logger, metrics: Metrics, body: str | None) -> S3Notification | None:
    """The S3 notification an SQS message carries; ``None`` for S3's test event (acknowledged and counted). A
    malformed body is logged, counted (``Errors{Kind=MalformedMessage}``) and raised: it fails alone and, after
    the queue's receives, lands in the dead-letter queue."""
    try:
        notification = parse_s3_message(body)
    except MalformedMessageError as exc:
        logger.error("malformed message", extra={"reason": str(exc), "body": (body or "")[:512]})
        with single_metric(name="Errors", unit=MetricUnit.Count, value=1) as metric:
            metric.add_dimension(name="Kind", value="MalformedMessage")
        raise
    if notification.test_event:
        logger.info("s3:TestEvent acknowledged")
        metrics.add_metric(name="TestEvents", unit=MetricUnit.Count, value=1)
        return None
    return notification


__all__ = ["IDEMPOTENCY_SECONDS", "emit_outcome", "object_idempotency", "s3_notification"]
