"""Exact IAM grants: the actions each function calls, on the resources it touches.

Why not CDK's `grant_read`/`grant_write`: they add families (`s3:GetObject*`, `s3:List*`, `kms:ReEncrypt*`,
`dynamodb:Scan`, ...) that none of our functions call; the policy a reviewer reads should list what is used.
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3


def _allow(fn: iam.IGrantable, actions: list[str], resources: list[str]) -> None:
    fn.grant_principal.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=resources))


def _key(bucket_or_store: object) -> kms.IKey:
    key = getattr(bucket_or_store, "encryption_key", None)
    assert key is not None, "every data store of the stack is encrypted with the stack's key"
    return key


def s3_get(fn: iam.IGrantable, bucket: s3.IBucket, pattern: str = "*") -> None:
    """Read objects (and specific versions, for versioned notifications) under `pattern`."""
    _allow(fn, ["s3:GetObject", "s3:GetObjectVersion"], [bucket.arn_for_objects(pattern)])
    _key(bucket).grant(fn, "kms:Decrypt")


def s3_put(fn: iam.IGrantable, bucket: s3.IBucket, pattern: str) -> None:
    """Write objects under `pattern` only: no delete, no ACL, no retention or legal-hold changes."""
    _allow(fn, ["s3:PutObject"], [bucket.arn_for_objects(pattern)])
    _key(bucket).grant(fn, "kms:GenerateDataKey")


def idempotency_table(fn: iam.IGrantable, table: dynamodb.Table) -> None:
    """What Powertools' DynamoDBPersistenceLayer calls: get, conditional put, update, delete of one record."""
    _allow(
        fn,
        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
        [table.table_arn],
    )
    _key(table).grant(fn, "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")


def video_state(fn: iam.IGrantable, table: dynamodb.Table, *, delete: bool = False) -> None:
    """The video state table: camera states (get, conditional put) and stream processors (get, put, a scan of the
    ``processor#`` items to find a stream's processor or list them; delete for DeleteStreamProcessor)."""
    actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan"] + (["dynamodb:DeleteItem"] if delete else [])
    _allow(fn, actions, [table.table_arn])
    _key(table).grant(fn, "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")


def stream_write(fn: iam.IGrantable, stream: kinesis.Stream) -> None:
    _allow(fn, ["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStreamSummary"], [stream.stream_arn])
    _key(stream).grant(fn, "kms:GenerateDataKey")


def stream_read(fn: iam.IGrantable, stream: kinesis.Stream) -> None:
    """What Lambda's Kinesis poller does with the function's role (shard discovery and reads)."""
    _allow(
        fn,
        [
            "kinesis:DescribeStream",
            "kinesis:DescribeStreamSummary",
            "kinesis:GetRecords",
            "kinesis:GetShardIterator",
            "kinesis:ListShards",
            "kinesis:SubscribeToShard",
        ],
        [stream.stream_arn],
    )
    _key(stream).grant(fn, "kms:Decrypt")
