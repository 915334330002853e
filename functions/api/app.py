"""api: Rekognition's JSON 1.1 API behind API Gateway (REST API, IAM auth, proxy integration on ``POST /``).

API Gateway has already checked the SigV4 signature (service ``execute-api``; see
``facesearch.client.rekognition_client``) and hands us the caller's IAM ARN, which goes into every audit
record. The protocol itself — targets, content type, error shapes, request ids — is
``facesearch.aws.protocol``, the same code ``facesearch serve`` runs.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from facesearch.aws.protocol import RekognitionProtocol
from facesearch.aws.runtime import cold_start
from facesearch.aws.tracing import lambda_tracer
from facesearch.wiring import build_processors

logger = Logger()
metrics = Metrics()
tracer = lambda_tracer()  # X-Ray where tracing is active; elsewhere a no-op that imports no X-Ray SDK

runtime = cold_start(dynamodb=True)
# Stream processors live in the video state table (FACESEARCH_STATE_TABLE), or a file under FACESEARCH_HOME.
# Without it (a stack without video) the processor operations answer UnknownOperationException.
processors = (
    build_processors(runtime.settings, runtime.service, dynamodb=runtime.dynamodb)
    if runtime.settings.state_table
    else None
)
protocol = RekognitionProtocol(runtime.service, processors=processors)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@event_source(data_class=APIGatewayProxyEvent)
def handler(event: APIGatewayProxyEvent, context: LambdaContext) -> dict[str, Any]:
    body = event.body or ""
    raw = base64.b64decode(body) if event.is_base64_encoded else body.encode()
    identity = event.request_context.identity
    target = event.headers.get("x-amz-target")
    started = time.perf_counter()
    response = protocol.handle(
        target=target,
        content_type=event.headers.get("content-type"),
        body=raw,
        caller=identity.user_arn or identity.caller or "anonymous",
        purpose=event.headers.get("x-facesearch-purpose"),
        request_id=event.request_context.request_id,
    )
    metrics.add_metric(name="RequestLatency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1e3)
    operation = (target or "").removeprefix("RekognitionService.") or "Missing"
    error = response.headers.get("x-amzn-ErrorType")
    logger.info("request", extra={"operation": operation, "status": response.status, "error": error})
    with single_metric(name="Requests", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="Operation", value=operation if not error else "Rejected")
    if error:
        with single_metric(name="Errors", unit=MetricUnit.Count, value=1) as metric:
            metric.add_dimension(name="Kind", value=error)
    return {
        "statusCode": response.status,
        "headers": response.headers,
        "body": response.body.decode(),
        "isBase64Encoded": False,
    }
