"""A small CDK app with every kind of resource the facesearch stack uses, to prove the local cloud deploys them.

S3 -> SQS notifications (CDK's Custom::S3BucketNotifications custom resource), a Python Lambda with a layer consuming
SQS (with a DLQ and partial batch failures), a DynamoDB table, a Kinesis stream -> Lambda, an OpenSearch domain, and
a REST API (API Gateway v1) in front of a Lambda. Deployed unchanged with cdklocal by tests/localcloud.
"""

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

HERE = Path(__file__).parent


class LocalCloudProbeStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        bucket = s3.Bucket(
            self,
            "Gallery",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        dlq = sqs.Queue(self, "Dlq")
        queue = sqs.Queue(
            self,
            "Queue",
            visibility_timeout=cdk.Duration.seconds(6),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=2, queue=dlq),
        )
        bucket.add_event_notification(s3.EventType.OBJECT_CREATED, s3n.SqsDestination(queue))
        if self.node.try_get_context("probe:removals"):  # a second deploy with this changes the custom resource
            bucket.add_event_notification(s3.EventType.OBJECT_REMOVED, s3n.SqsDestination(queue))

        layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(str(HERE / "layer")),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_11],
        )
        common = dict(runtime=lambda_.Runtime.PYTHON_3_11, handler="app.handler", timeout=cdk.Duration.seconds(5))
        consumer = lambda_.Function(
            self,
            "Consumer",
            code=lambda_.Code.from_asset(str(HERE / "functions" / "consumer")),
            layers=[layer],
            **common,
            environment={"TABLE_NAME": table.table_name, "FACESEARCH_MODEL_DIR": "/opt/models"},
        )
        consumer.add_event_source(sources.SqsEventSource(queue, batch_size=5, report_batch_item_failures=True))
        table.grant_read_write_data(consumer)

        stream = kinesis.Stream(self, "Frames", shard_count=1)
        stream_fn = lambda_.Function(
            self,
            "StreamConsumer",
            code=lambda_.Code.from_asset(str(HERE / "functions" / "stream")),
            **common,
            environment={"TABLE_NAME": table.table_name},
        )
        stream_fn.add_event_source(
            sources.KinesisEventSource(
                stream, starting_position=lambda_.StartingPosition.TRIM_HORIZON, batch_size=10, retry_attempts=2
            )
        )
        table.grant_read_write_data(stream_fn)

        domain = opensearch.Domain(
            self,
            "Search",
            version=opensearch.EngineVersion.OPENSEARCH_2_19,
            capacity=opensearch.CapacityConfig(
                data_nodes=1, data_node_instance_type="t3.small.search", multi_az_with_standby_enabled=False
            ),
            ebs=opensearch.EbsOptions(volume_size=10),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        api_fn = lambda_.Function(
            self,
            "Api",
            code=lambda_.Code.from_asset(str(HERE / "functions" / "api")),
            runtime=lambda_.Runtime.PYTHON_3_11,
            handler="app.handler",
            timeout=cdk.Duration.seconds(10),
            environment={"TABLE_NAME": table.table_name, "OPENSEARCH_URL": "http://" + domain.domain_endpoint},
        )
        table.grant_read_data(api_fn)
        api = apigw.LambdaRestApi(self, "RestApi", handler=api_fn, proxy=False)
        items = api.root.add_resource("items").add_resource("{pk}")
        items.add_method("GET")
        api.root.add_resource("search").add_method("GET")

        cdk.CfnOutput(self, "GalleryBucketName", value=bucket.bucket_name)
        cdk.CfnOutput(self, "QueueUrl", value=queue.queue_url)
        cdk.CfnOutput(self, "DlqUrl", value=dlq.queue_url)
        cdk.CfnOutput(self, "TableName", value=table.table_name)
        cdk.CfnOutput(self, "FramesStreamName", value=stream.stream_name)
        cdk.CfnOutput(self, "OpenSearchEndpoint", value=domain.domain_endpoint)
        cdk.CfnOutput(self, "ApiUrl", value=api.url)
        cdk.CfnOutput(self, "ConsumerFunctionName", value=consumer.function_name)


app = cdk.App()
LocalCloudProbeStack(app, "LocalCloudProbe")
app.synth()
