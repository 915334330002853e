"""S3 → SQS event notifications with a dead-letter queue, without CDK's notification custom resource."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from facesearch_cdk.constructs.storage import bucket_arn


class BucketQueue(Construct):
    """A queue fed by one bucket's notifications, with redrive to a dead-letter queue after N receives.

    Why not `bucket.add_event_notification`: it creates the `Custom::S3BucketNotifications` custom resource (a
    Lambda that calls PutBucketNotificationConfiguration), which LocalStack's free build reports as created but
    never runs, so the same template would silently deliver nothing locally. Writing the bucket's own
    `NotificationConfiguration` (plain CloudFormation) works the same in AWS and LocalStack. S3 validates the
    destination when the configuration is written, so the bucket depends on the queue policy explicitly.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.Bucket,
        bucket_name: str,
        events: list[str],
        prefix: str | None,
        key: kms.IKey,
        visibility_timeout: Duration,
        max_receive_count: int,
        dlq_retention: Duration,
        removal: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dlq = sqs.Queue(
            self,
            "Dlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=dlq_retention,
            removal_policy=removal,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            data_key_reuse=Duration.hours(1),  # fewer KMS calls for S3's many small messages
            enforce_ssl=True,
            visibility_timeout=visibility_timeout,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=max_receive_count),
            removal_policy=removal,
        )
        source = bucket_arn(bucket_name)
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowS3Notifications",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={
                    "ArnLike": {"aws:SourceArn": source},
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                },
            )
        )
        rules = [{"name": "prefix", "value": prefix}] if prefix else None
        cfn_bucket: s3.CfnBucket = bucket.node.default_child  # type: ignore[assignment]
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            queue_configurations=[
                s3.CfnBucket.QueueConfigurationProperty(
                    event=event,
                    queue=self.queue.queue_arn,
                    filter=s3.CfnBucket.NotificationFilterProperty(
                        s3_key=s3.CfnBucket.S3KeyFilterProperty(
                            rules=[s3.CfnBucket.FilterRuleProperty(**rule) for rule in rules]
                        )
                    )
                    if rules
                    else None,
                )
                for event in events
            ]
        )
        # The policy statement above lives in the queue's QueuePolicy; S3 must see it before accepting the config.
        policy = self.queue.node.find_child("Policy")  # the queue's one QueuePolicy (also holds the TLS-only rule)
        cfn_bucket.add_resource_dependency(policy.node.default_child)  # type: ignore[arg-type]
