"""The buckets: gallery, query, video, results, audit (Object Lock), and the server access logs bucket."""

from __future__ import annotations

from aws_cdk import Aws, Duration, Fn, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from facesearch_cdk.config import StackConfig


def bucket_name(config: StackConfig, purpose: str) -> str:
    """Deterministic name `<stack>-<purpose>-<account>-<region>`.

    Why deterministic: the SQS queue policy must name the bucket that may send to it, and the bucket's
    notification configuration must be created after that policy (S3 checks the destination when the
    configuration is written). Referencing the bucket resource from the policy would make a dependency cycle;
    a name built from pseudo parameters does not.
    """
    return Fn.join("-", [config.bucket_prefix, purpose, Aws.ACCOUNT_ID, Aws.REGION])


def bucket_arn(name: str) -> str:
    return Fn.join("", ["arn:", Aws.PARTITION, ":s3:::", name])


class Buckets(Construct):
    """All object storage of the stack, each bucket private, TLS-only, versioned, KMS-encrypted and logged."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StackConfig, key: kms.IKey, removal: RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id)
        # S3 server access logs can only be delivered to an SSE-S3 bucket (not SSE-KMS): AWS's rule, not a choice.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            # With the feature flag serverAccessLogsUseBucketPolicy (cdk.json), log delivery is granted by bucket
            # policy, so ACLs can be disabled entirely.
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(365)),
                s3.LifecycleRule(id="expire-old-versions", noncurrent_version_expiration=Duration.days(30)),
            ],
            removal_policy=removal,
        )
        self.names: dict[str, str] = {}

        def bucket(construct: str, purpose: str, **extra: object) -> s3.Bucket:
            name = bucket_name(config, purpose)
            self.names[purpose] = name
            rules = list(extra.pop("lifecycle_rules", []))  # type: ignore[arg-type]
            rules.append(
                s3.LifecycleRule(
                    id="tidy-versions-and-uploads",
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            )
            return s3.Bucket(
                self,
                construct,
                bucket_name=name,
                encryption=s3.BucketEncryption.KMS,
                encryption_key=key,
                bucket_key_enabled=True,  # one KMS data key per bucket-day instead of per object: KMS cost
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                versioned=True,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                server_access_logs_bucket=self.access_logs,
                server_access_logs_prefix=f"{purpose}/",
                lifecycle_rules=rules,
                **extra,  # type: ignore[arg-type]
            )

        # Gallery images are the source of truth for indexed faces: kept until deleted (deletion removes faces).
        self.gallery = bucket("Gallery", "gallery", removal_policy=removal)
        # Query images are transient: the search result is what matters, the photo expires.
        self.query = bucket(
            "Query",
            "query",
            removal_policy=removal,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-query-images", expiration=Duration.days(config.query_retention_days))
            ],
        )
        self.video = bucket("Video", "video", removal_policy=removal)
        # Search results expire; per-image index reports stay as long as the gallery image they describe.
        self.results = bucket(
            "Results",
            "results",
            removal_policy=removal,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-search-results",
                    prefix="results/",
                    expiration=Duration.days(config.results_retention_days),
                )
            ],
        )
        # Audit records: the functions may add records but nobody can alter or delete one within the retention.
        # Always retained: a stack teardown must not be a way to erase an audit trail.
        retention = Duration.days(config.audit_retention_days)
        self.audit = bucket(
            "Audit",
            "audit",
            removal_policy=RemovalPolicy.RETAIN,
            object_lock_enabled=True,
            object_lock_default_retention=(
                s3.ObjectLockRetention.compliance(retention)
                if config.audit_object_lock_mode == "COMPLIANCE"
                else s3.ObjectLockRetention.governance(retention)
            ),
        )
