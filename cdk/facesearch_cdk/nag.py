"""cdk-nag (AwsSolutions pack) acknowledgments: each finding we accept, on the narrowest construct, with why.

Anything not acknowledged here fails `cdk synth` (app.py registers the pack as a validation plugin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment as Ack
from aws_cdk import CfnResource, Stack, Validations
from constructs import IConstruct

if TYPE_CHECKING:
    from facesearch_cdk.stack import FaceSearchStack


def _rule(rule: str, finding: str | None = None) -> str:
    return f"AwsSolutions::AwsSolutions-{rule}" + (f"[{finding}]" if finding else "")


def _ack(scope: IConstruct, rule: str, reason: str, finding: str | None = None) -> None:
    Validations.of(scope).acknowledge(Ack(id=_rule(rule, finding), reason=reason))


def _arn_of(stack: Stack, construct: IConstruct, suffix: str) -> str:
    """cdk-nag's rendering of `Fn::GetAtt [<logical id>, Arn]` + suffix in IAM5 resource findings."""
    child = construct.node.default_child
    assert isinstance(child, CfnResource)
    return f"Resource::<{stack.get_logical_id(child)}.Arn>{suffix}"


def apply_suppressions(stack: FaceSearchStack) -> None:
    config = stack.config
    functions = stack.functions

    # --- Audit
    _ack(
        stack.audit_key.secret,
        "SMG4",
        "The audit seal key is not rotated automatically: every sealed record names the key it was sealed with "
        "(key_id) and verification needs that key, so a rotation must keep the old value for the records' "
        "retention; rotate by hand per docs/deploy.md. It is read only by the audit writers.",
    )

    # --- Lambda
    _ack(
        functions,
        "L1",
        "Python 3.11 is deliberate: the project targets 3.11 (pyproject requires-python) and the runtime layer's "
        "manylinux wheels are built for cp311; a runtime bump is a project-wide change, not a stack setting.",
    )
    _ack(
        functions,
        "IAM4",
        "AWSLambdaBasicExecutionRole only allows creating/writing CloudWatch Logs streams: the functions' logs.",
        "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    )
    if config.vpc:
        _ack(
            functions,
            "IAM4",
            "AWSLambdaVPCAccessExecutionRole only manages the functions' network interfaces in the VPC (vpc=true).",
            "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
        )
    _ack(
        functions,
        "IAM5",
        "X-Ray's PutTraceSegments/PutTelemetryRecords support no resource-level permissions: AWS requires '*'.",
        "Resource::*",
    )
    # Object-level grants: S3 and OpenSearch authorize objects/paths as <arn>/<pattern>; each pattern is the
    # narrowest prefix the function reads or writes (see stack.py), never a whole account or service.
    prefixes = {
        "Gallery images under the collections/ key convention (read to index; IndexFaces with an S3Object).": (
            stack.buckets.gallery,
            "/collections/*",
        ),
        "Query images (search_faces reads each uploaded query image; keys are caller-chosen).": (
            stack.buckets.query,
            "/*",
        ),
        "Stored videos (StartFaceSearch reads the S3Object the caller names; keys are caller-chosen).": (
            stack.buckets.video,
            "/*",
        ),
        "Per-image index reports, written by index_faces under reports/ only.": (stack.buckets.results, "/reports/*"),
        "Search results under results/ (search_faces writes, GetFaceSearch reads).": (
            stack.buckets.results,
            "/results/*",
        ),
        f"Append-only audit records under {config.audit_prefix} (s3:PutObject only; Object Lock forbids change).": (
            stack.buckets.audit,
            f"/{config.audit_prefix}*",
        ),
        "The domain's data plane paths (indices); OpenSearch IAM authorizes by <domain ARN>/<path>.": (
            stack.search.domain,
            "/*",
        ),
    }
    for reason, (construct, suffix) in prefixes.items():
        _ack(functions, "IAM5", reason, _arn_of(stack, construct, suffix))
    if stack.streams is not None:
        _ack_video(stack)

    # --- OpenSearch fine-grained access: the role-mapping custom resource
    if stack.role_mapping is not None and stack.search_admin is not None:
        mapping = stack.role_mapping.function
        _ack(mapping, "L1", "Python 3.11 like the face functions (one runtime to patch); stdlib + botocore only.")
        _ack(
            stack.search_admin,
            "IAM4",
            "AWSLambdaBasicExecutionRole only lets the role-mapping function write its own logs.",
            "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        )
        if config.vpc:
            _ack(
                stack.search_admin,
                "IAM4",
                "AWSLambdaVPCAccessExecutionRole only manages the role-mapping function's network interfaces.",
                "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
            )
        _ack(
            stack.search_admin,
            "IAM5",
            "The master user may call only the security plugin's REST API paths on this domain.",
            _arn_of(stack, stack.search.domain, "/_plugins/_security/api/*"),
        )

    # --- API Gateway
    api = stack.api.rest_api
    _ack(
        api,
        "APIG2",
        "The api function validates every request body itself and must answer in Rekognition's error shapes "
        "(InvalidParameterException, ...); an API Gateway validator would answer in its own shape instead.",
    )
    _ack(
        api,
        "APIG3",
        "Every method requires SigV4 (IAM) authorization; a WAF web ACL (~$5/month + rules) is an optional add-on "
        "documented in docs/deploy.md, not a default.",
    )
    _ack(
        api,
        "COG4",
        "The API is for machine callers (a stock boto3 Rekognition client) and authorizes with IAM SigV4, which "
        "is what Rekognition itself uses; a Cognito user pool authorizer would break that contract.",
    )
    _ack(
        api,
        "IAM4",
        "API Gateway's account-level CloudWatch role needs AmazonAPIGatewayPushToCloudWatchLogs (AWS's documented "
        "policy for execution logging).",
        "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
    )

    # --- OpenSearch (config-dependent: a finding is acknowledged only when the config chose it)
    domain = stack.search.domain
    _ack(
        domain,
        "OS3",
        "Callers are Lambda functions with IAM roles (no fixed IPs); access is restricted by the domain's resource "
        "policy to those roles, SigV4 signing and, with fine-grained access, per-index role mapping.",
    )
    if not config.vpc:
        _ack(
            domain,
            "OS1",
            "vpc=false (context): public endpoint restricted by the IAM resource policy, HTTPS-only TLS 1.2, "
            "SigV4. Set vpc=true to place the domain and functions in private subnets (adds a NAT gateway).",
        )
    if config.open_search.dedicated_master_count == 0:
        _ack(
            domain,
            "OS4",
            "No dedicated masters by default: a 1-2 node domain for one face index does not need them and three "
            "would triple the idle cost; set openSearch.dedicatedMasterCount=3 for large clusters.",
        )
    if config.open_search.instance_count == 1:
        _ack(
            domain,
            "OS7",
            "openSearch.instanceCount=1 (context): one node cannot span zones. The vectors are rebuildable from "
            "the gallery bucket; set instanceCount=2 for zone awareness.",
        )


def _ack_video(stack: FaceSearchStack) -> None:
    """The video pipeline's findings (only when `video` is on)."""
    assert stack.streams is not None
    match_frames = stack.functions.by_name["match_frames"]
    _ack(
        match_frames,
        "IAM5",
        "CDK's SqsDlq grant for the on-failure destination: encrypt/data-key actions on the stack's one KMS key, "
        "which Lambda needs to send failure records to the KMS-encrypted dead-letter queue.",
        "Action::kms:ReEncrypt*",
    )
    _ack(
        match_frames,
        "IAM5",
        "Same SqsDlq grant as above (GenerateDataKey*: plain and without-plaintext variants) on the one key.",
        "Action::kms:GenerateDataKey*",
    )

    # --- Streams and queues
    for stream in (stack.streams.frames, stack.streams.results):
        _ack(
            stream,
            "KDS3",
            "Frames carry face images (biometric data): the stack's customer key gives one revocation point and "
            "key-use audit in CloudTrail for every store; the extra KMS calls cost cents per shard-month.",
        )
    _ack(
        stack.streams.dlq,
        "SQS3",
        "This queue is itself a dead-letter destination (match_frames' on-failure destination for Kinesis "
        "batches); cdk-nag only recognises DLQs referenced by an SQS redrive policy.",
    )
