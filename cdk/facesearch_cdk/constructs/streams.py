"""Kinesis frames and results streams, and match_frames' enhanced fan-out consumer (issue 12)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from facesearch_cdk.config import StreamConfig
from facesearch_cdk.constructs import grants


class VideoStreams(Construct):
    """Frames in (partition key = camera id, so order holds per camera), Rekognition-shaped results out."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StreamConfig, key: kms.IKey, removal: RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        retention = Duration.hours(config.retention_hours)
        self.frames = kinesis.Stream(
            self,
            "Frames",
            shard_count=config.frames_shards,
            stream_mode=kinesis.StreamMode.PROVISIONED,
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=key,
            retention_period=retention,
            removal_policy=removal,
        )
        self.results = kinesis.Stream(
            self,
            "Results",
            shard_count=config.results_shards,
            stream_mode=kinesis.StreamMode.PROVISIONED,
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=key,
            retention_period=retention,
            removal_policy=removal,
        )
        # Frames that exhaust their retries (or outlive max record age) are described here: Lambda sends the
        # shard/sequence range, so the frames can be re-read from the stream while it still holds them.
        self.dlq = sqs.Queue(
            self,
            "MatchFramesDlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=removal,
        )
        self.consumer: kinesis.CfnStreamConsumer | None = None
        self.mapping: lambda_.EventSourceMapping | None = None

    def attach_consumer(self, fn: lambda_.Function) -> lambda_.EventSourceMapping:
        """Wire match_frames to the frames stream: EFO consumer (or a shared poller), batch and failure policy."""
        c = self.config
        if c.consumer == "efo":
            # A registered consumer gets its own 2 MiB/s per shard pushed over HTTP/2: other readers of the
            # frames stream (recorders, a second processor) do not slow the matcher down.
            self.consumer = kinesis.CfnStreamConsumer(
                self, "MatchFramesConsumer", consumer_name="match-frames", stream_arn=self.frames.stream_arn
            )
            source_arn = self.consumer.attr_consumer_arn
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["kinesis:SubscribeToShard", "kinesis:DescribeStreamConsumer"],
                    resources=[source_arn],
                )
            )
        else:
            source_arn = self.frames.stream_arn
        grants.stream_read(fn, self.frames)
        mapping = lambda_.EventSourceMapping(
            self,
            "MatchFramesMapping",
            target=fn,
            event_source_arn=source_arn,
            starting_position=lambda_.StartingPosition.LATEST,
            batch_size=c.batch_size,
            max_batching_window=Duration.seconds(c.batch_window_seconds),
            parallelization_factor=c.parallelization_factor,
            bisect_batch_on_error=True,
            max_record_age=None if c.max_record_age_seconds == -1 else Duration.seconds(c.max_record_age_seconds),
            retry_attempts=c.retry_attempts,
            report_batch_item_failures=True,
            on_failure=sources.SqsDlq(self.dlq),
        )
        # Lambda checks the role's permissions when the mapping is created: the policy must exist first.
        assert fn.role is not None
        mapping.node.add_dependency(fn.role)
        self.mapping = mapping
        return mapping
