"""The Rekognition-compatible REST API: API Gateway (IAM auth, SigV4 for `execute-api`) → the api function."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct


class RekognitionApi(Construct):
    """REST API (API Gateway v1: the local cloud's free LocalStack has no HTTP API) proxying every path to `api`.

    Rekognition's protocol is `POST /` with `X-Amz-Target`; the proxy keeps the method, path, headers and body, and
    the function answers in Rekognition's shapes. IAM authorization: every caller signs with SigV4.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        log_retention: logs.RetentionDays,
        removal: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention, removal_policy=removal)
        self.rest_api = apigateway.LambdaRestApi(
            self,
            "RestApi",
            handler=handler,
            proxy=True,
            description="facesearch: Rekognition JSON 1.1 API (X-Amz-Target: RekognitionService.<Operation>)",
            default_method_options=apigateway.MethodOptions(authorization_type=apigateway.AuthorizationType.IAM),
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            # Execution logs need the account-level CloudWatch role (AWS::ApiGateway::Account).
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=removal,
            deploy_options=apigateway.StageOptions(
                stage_name="v1",
                access_log_destination=apigateway.LogGroupLogDestination(access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies carry face images: never in logs
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=100,
                throttling_burst_limit=200,
            ),
        )
