"""The customer-managed KMS key every data store of the stack is encrypted with."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class DataKey(Construct):
    """One rotated customer key for buckets, queues, streams and the table.

    Why one key: a single key policy to audit and a single place to revoke access; per-store separation comes
    from IAM grants (each function gets only the stores it touches). Why a customer key rather than AWS-managed
    keys: S3 must encrypt the SQS messages it sends, and only a customer key's policy can let S3 do that.
    """

    def __init__(self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="facesearch: images, face reports, audit records, queues, streams, idempotency table",
            enable_key_rotation=True,
            pending_window=Duration.days(7),
            removal_policy=removal_policy,
        )

    def allow_service(self, principal: str, actions: list[str], *, source_arns: list[str] | None = None) -> None:
        """Let an AWS service principal use the key, optionally only on behalf of the given resources."""
        conditions = {"ArnLike": {"aws:SourceArn": source_arns}} if source_arns else None
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(principal)],
                actions=actions,
                resources=["*"],  # in a key policy "*" means "this key"
                conditions=conditions,
            )
        )
