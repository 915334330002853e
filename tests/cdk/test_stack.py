"""The synthesized FaceSearch template, read as a specification of what `cdk deploy` creates.

Synthesis itself runs cdk-nag's AwsSolutions pack (conftest): reaching these assertions means zero unacknowledged
findings.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from template_helpers import props, resources

OUTPUTS = [
    "GalleryBucketName",
    "QueryBucketName",
    "ResultsBucketName",
    "VideoBucketName",
    "AuditBucketName",
    "AuditKeySecretArn",
    "ApiUrl",
    "FramesStreamName",
    "ResultsStreamName",
    "OpenSearchEndpoint",
    "EventBusName",
    "IndexDlqUrl",
    "SearchDlqUrl",
]
FUNCTIONS = {"IndexFaces": "index_faces", "SearchFaces": "search_faces", "Api": "api", "MatchFrames": "match_frames"}
# Actions AWS offers no resource-level permissions for; the only ones allowed on Resource "*".
WILDCARD_RESOURCE_ONLY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def the_key(template: dict[str, Any]) -> str:
    (key_id,) = resources(template, "AWS::KMS::Key")
    return key_id


def is_key(value: Any, key_id: str) -> bool:
    return value in ({"Fn::GetAtt": [key_id, "Arn"]}, {"Ref": key_id})


def logical_id(template: dict[str, Any], kind: str, startswith: str) -> str:
    (lid,) = [lid for lid in resources(template, kind) if lid.startswith(startswith)]
    return lid


# --- encryption at rest and in transit


def test_every_bucket_is_encrypted_private_versioned_and_tls_only(template: dict[str, Any]) -> None:
    key_id = the_key(template)
    buckets = resources(template, "AWS::S3::Bucket")
    assert len(buckets) == 6  # gallery, query, video, results, audit + server access logs
    policies = {json.dumps(p["Bucket"]): p["PolicyDocument"] for p in props(template, "AWS::S3::BucketPolicy")}
    for lid, bucket in buckets.items():
        p = bucket["Properties"]
        (rule,) = p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        default = rule["ServerSideEncryptionByDefault"]
        if lid.startswith("BucketsAccessLogs"):
            assert default["SSEAlgorithm"] == "AES256"  # S3 log delivery supports only SSE-S3 targets
        else:
            assert default["SSEAlgorithm"] == "aws:kms" and is_key(default["KMSMasterKeyID"], key_id), lid
            assert p["LoggingConfiguration"]["DestinationBucketName"]["Ref"].startswith("BucketsAccessLogs")
        assert p["PublicAccessBlockConfiguration"] == dict.fromkeys(
            ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
        )
        assert p["VersioningConfiguration"] == {"Status": "Enabled"}
        statements = policies[json.dumps({"Ref": lid})]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        ), lid


def test_queues_streams_table_topic_and_domain_use_the_customer_key(template: dict[str, Any]) -> None:
    key_id = the_key(template)
    queues = props(template, "AWS::SQS::Queue")
    assert len(queues) == 5  # index + DLQ, search + DLQ, match_frames on-failure DLQ
    assert all(is_key(q["KmsMasterKeyId"], key_id) for q in queues)
    streams = props(template, "AWS::Kinesis::Stream")
    assert len(streams) == 2
    assert all(s["StreamEncryption"]["EncryptionType"] == "KMS" for s in streams)
    assert all(is_key(s["StreamEncryption"]["KeyId"], key_id) for s in streams)
    tables = props(template, "AWS::DynamoDB::Table")
    assert len(tables) == 2  # idempotency, video state (camera tracks and stream processors)
    for table in tables:
        assert table["SSESpecification"]["SSEEnabled"] is True and table["SSESpecification"]["SSEType"] == "KMS"
        assert is_key(table["SSESpecification"]["KMSMasterKeyId"], key_id)
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    (topic,) = props(template, "AWS::SNS::Topic")
    assert is_key(topic["KmsMasterKeyId"], key_id)
    (domain,) = props(template, "AWS::OpenSearchService::Domain")
    assert domain["EncryptionAtRestOptions"]["Enabled"] is True
    assert domain["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert domain["DomainEndpointOptions"]["EnforceHTTPS"] is True
    (key,) = props(template, "AWS::KMS::Key")
    assert key["EnableKeyRotation"] is True


def test_queues_refuse_plain_http(template: dict[str, Any]) -> None:
    for policy in props(template, "AWS::SQS::QueuePolicy"):
        assert any(
            s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in policy["PolicyDocument"]["Statement"]
        )


# --- S3 -> SQS -> Lambda


@pytest.mark.parametrize(
    ("bucket", "queue", "events", "prefix"),
    [
        ("BucketsGallery", "IndexQueue", ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"], "collections/"),
        ("BucketsQuery", "SearchQueue", ["s3:ObjectCreated:*"], None),
    ],
)
def test_bucket_notifications_are_plain_cloudformation_to_the_queue(
    template: dict[str, Any], bucket: str, queue: str, events: list[str], prefix: str | None
) -> None:
    bucket_id = logical_id(template, "AWS::S3::Bucket", bucket)
    queue_id = _queue_id(template, queue)
    resource = template["Resources"][bucket_id]
    configs = resource["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert [c["Event"] for c in configs] == events
    for c in configs:
        assert c["Queue"] == {"Fn::GetAtt": [queue_id, "Arn"]}
        rules = c.get("Filter", {}).get("S3Key", {}).get("Rules")
        assert rules == ([{"Name": "prefix", "Value": prefix}] if prefix else None)
    # S3 checks the destination's policy when the configuration is written: the policy must exist first.
    policy_id = logical_id(template, "AWS::SQS::QueuePolicy", f"{queue}Policy")
    assert policy_id in resource["DependsOn"]
    statements = template["Resources"][policy_id]["Properties"]["PolicyDocument"]["Statement"]
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    assert "aws:SourceArn" in allow["Condition"]["ArnLike"]


def _queue_id(template: dict[str, Any], construct: str) -> str:
    (lid,) = [
        lid
        for lid in resources(template, "AWS::SQS::Queue")
        if lid.startswith(construct) and not lid.startswith(f"{construct}Dlq")
    ]
    return lid


def _custom_resources(template: dict[str, Any]) -> list[str]:
    kinds = [r["Type"] for r in template["Resources"].values()]
    return [k for k in kinds if k.startswith("Custom::") or k == "AWS::CloudFormation::CustomResource"]


def test_the_only_custom_resource_is_the_opensearch_role_mapping(template: dict[str, Any]) -> None:
    """Notifications, log policies and the domain policy are plain CloudFormation (free LocalStack runs no custom
    resources); only fine-grained access needs one, and the local cloud turns that off."""
    assert _custom_resources(template) == ["Custom::OpenSearchRoleMapping"]
    (mapping,) = props(template, "Custom::OpenSearchRoleMapping")
    assert len(mapping["WriterRoleArns"]) == 2 and len(mapping["ReaderRoleArns"]) == 2
    (domain,) = props(template, "AWS::OpenSearchService::Domain")
    master = domain["AdvancedSecurityOptions"]["MasterUserOptions"]["MasterUserARN"]
    (mapping_fn,) = [
        f for lid, f in resources(template, "AWS::Lambda::Function").items() if lid.startswith("OpenSearchRoleMapping")
    ]
    assert mapping_fn["Properties"]["Role"] == master  # the master user is the mapping function's role only


def test_without_fine_grained_access_there_is_no_custom_resource(vpc_template: dict[str, Any]) -> None:
    assert _custom_resources(vpc_template) == []
    (domain,) = props(vpc_template, "AWS::OpenSearchService::Domain")
    assert "AdvancedSecurityOptions" not in domain


def test_s3_can_use_the_key_only_for_the_two_notifying_buckets(template: dict[str, Any]) -> None:
    (key,) = props(template, "AWS::KMS::Key")
    (s3_statement,) = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "s3.amazonaws.com"}
    ]
    assert sorted(s3_statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert len(s3_statement["Condition"]["ArnLike"]["aws:SourceArn"]) == 2


def test_failed_messages_are_redriven_to_a_dead_letter_queue(template: dict[str, Any]) -> None:
    for construct in ("IndexQueue", "SearchQueue"):
        queue = template["Resources"][_queue_id(template, construct)]["Properties"]
        dlq_id = logical_id(template, "AWS::SQS::Queue", f"{construct}Dlq")
        assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 3}
        # Visibility outlasts six function timeouts, so SQS never re-delivers a batch that is still running.
        assert queue["VisibilityTimeout"] >= 6 * 60


def test_sqs_triggers_report_partial_batch_failures(template: dict[str, Any]) -> None:
    mappings = [m for m in props(template, "AWS::Lambda::EventSourceMapping") if "ScalingConfig" in m]
    assert len(mappings) == 2
    for m in mappings:
        assert m["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert m["ScalingConfig"] == {"MaximumConcurrency": 5}


# --- functions


def test_four_python_311_functions_with_both_layers_and_the_agreed_environment(template: dict[str, Any]) -> None:
    functions = {
        lid: f for lid, f in resources(template, "AWS::Lambda::Function").items() if lid.startswith("Functions")
    }
    assert sorted(lid.removeprefix("Functions")[:-8] for lid in functions) == sorted(FUNCTIONS)
    layer_ids = set(resources(template, "AWS::Lambda::LayerVersion"))
    for fn in functions.values():
        p = fn["Properties"]
        assert p["Runtime"] == "python3.11" and p["Handler"] == "app.handler"
        assert p["Architectures"] == ["arm64"]
        assert {ref["Ref"] for ref in p["Layers"]} == layer_ids
        env = p["Environment"]["Variables"]
        assert env["FACESEARCH_BACKEND"] == "opensearch"
        assert env["FACESEARCH_OPENSEARCH_AUTH"] == "sigv4"
        assert env["FACESEARCH_MODEL_DIR"] == "/opt/models"
        assert env["FACESEARCH_AUDIT_SINK"] == "s3"
        assert env["POWERTOOLS_SERVICE_NAME"] == "facesearch"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "facesearch"
        for name in (
            "FACESEARCH_OPENSEARCH_URL",
            "FACESEARCH_AUDIT_BUCKET",
            "FACESEARCH_AUDIT_KEY_SECRET",
            "FACESEARCH_RESULTS_BUCKET",
            "FACESEARCH_IDEMPOTENCY_TABLE",
            "FACESEARCH_EVENT_BUS",
            "FACESEARCH_INDEX_PREFIX",
            "FACESEARCH_THREADS",
        ):
            assert env[name], name
        assert p["TracingConfig"] == {"Mode": "Active"}
        # Named `<stack>-<function>`, logging to Lambda's default group name (AWS and the local cloud agree).
        assert p["FunctionName"].startswith("FaceSearch-")
        (group,) = [
            g["Properties"]
            for lid, g in resources(template, "AWS::Logs::LogGroup").items()
            if p["LoggingConfig"]["LogGroup"] == {"Ref": lid}
        ]
        assert group["LogGroupName"] == f"/aws/lambda/{p['FunctionName']}"
    api = next(f for lid, f in functions.items() if lid.startswith("FunctionsApi"))
    assert api["Properties"]["Timeout"] <= 29  # API Gateway's integration timeout


# --- video: Kinesis enhanced fan-out


def test_a_plain_http_domain_endpoint_is_not_signed(no_video_template: dict[str, Any]) -> None:
    """The store refuses SigV4 over http (credentials would travel in the clear); the local cloud's gateway is
    http and checks no signatures, so `openSearch.scheme=http` means unsigned requests."""
    for fn in resources(no_video_template, "AWS::Lambda::Function").values():
        env = fn["Properties"].get("Environment", {}).get("Variables", {})
        if "FACESEARCH_OPENSEARCH_URL" in env:
            assert env["FACESEARCH_OPENSEARCH_AUTH"] == "none"


def test_match_frames_reads_frames_through_an_enhanced_fan_out_consumer(template: dict[str, Any]) -> None:
    (consumer_id,) = resources(template, "AWS::Kinesis::StreamConsumer")
    frames_id = logical_id(template, "AWS::Kinesis::Stream", "StreamsFrames")
    consumer = template["Resources"][consumer_id]["Properties"]
    assert consumer["StreamARN"] == {"Fn::GetAtt": [frames_id, "Arn"]}
    (mapping,) = [
        m
        for m in props(template, "AWS::Lambda::EventSourceMapping")
        if m["EventSourceArn"] == {"Fn::GetAtt": [consumer_id, "ConsumerARN"]}
    ]
    dlq_id = logical_id(template, "AWS::SQS::Queue", "StreamsMatchFramesDlq")
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [dlq_id, "Arn"]}}}
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRecordAgeInSeconds"] == 60
    assert mapping["ParallelizationFactor"] == 1 and mapping["BatchSize"] == 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["FunctionName"]["Ref"].startswith("FunctionsMatchFrames")


def test_the_video_state_table_keeps_camera_state_with_a_ttl_and_only_video_functions_use_it(
    template: dict[str, Any],
) -> None:
    table_id = logical_id(template, "AWS::DynamoDB::Table", "VideoState")
    table = template["Resources"][table_id]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    ours = [f for f in props(template, "AWS::Lambda::Function") if "FACESEARCH_BACKEND" in str(f.get("Environment"))]
    assert len(ours) == 4
    assert all(f["Environment"]["Variables"]["FACESEARCH_STATE_TABLE"] == {"Ref": table_id} for f in ours)

    def actions_on_table(prefix: str) -> set[str]:
        (lid,) = [lid for lid in resources(template, "AWS::IAM::Policy") if lid.startswith(f"Functions{prefix}")]
        found: set[str] = set()
        for s in template["Resources"][lid]["Properties"]["PolicyDocument"]["Statement"]:
            if table_id in json.dumps(s.get("Resource")):
                found |= set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        return found

    assert actions_on_table("MatchFrames") == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan"}
    assert actions_on_table("Api") == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:DeleteItem"}
    assert actions_on_table("IndexFaces") == set() and actions_on_table("SearchFaces") == set()


# --- API


def test_every_api_method_requires_sigv4_and_proxies_to_the_api_function(template: dict[str, Any]) -> None:
    methods = props(template, "AWS::ApiGateway::Method")
    assert methods and all(m["AuthorizationType"] == "AWS_IAM" for m in methods)
    for m in methods:
        assert m["Integration"]["Type"] == "AWS_PROXY"
        uri = json.dumps(m["Integration"]["Uri"])
        assert "FunctionsApi" in uri


# --- state, audit, domain


def test_idempotency_table_matches_powertools_defaults(template: dict[str, Any]) -> None:
    table = template["Resources"][logical_id(template, "AWS::DynamoDB::Table", "Idempotency")]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_audit_bucket_locks_records_and_outlives_the_stack(template: dict[str, Any]) -> None:
    audit_id = logical_id(template, "AWS::S3::Bucket", "BucketsAudit")
    audit = template["Resources"][audit_id]
    lock = audit["Properties"]["ObjectLockConfiguration"]
    assert audit["Properties"]["ObjectLockEnabled"] is True
    assert lock["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 365}
    assert audit["DeletionPolicy"] == "Retain"


def test_functions_can_only_append_audit_records(template: dict[str, Any]) -> None:
    audit_id = logical_id(template, "AWS::S3::Bucket", "BucketsAudit")
    for policy in props(template, "AWS::IAM::Policy"):
        for s in policy["PolicyDocument"]["Statement"]:
            if audit_id in json.dumps(s.get("Resource")):
                assert s["Action"] == "s3:PutObject"


def test_audit_records_are_sealed_with_a_generated_key_only_the_audit_writers_read(template: dict[str, Any]) -> None:
    (secret_id,) = resources(template, "AWS::SecretsManager::Secret")
    secret = template["Resources"][secret_id]
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 64  # never in the template itself
    assert "SecretString" not in secret["Properties"]
    assert is_key(secret["Properties"]["KmsKeyId"], the_key(template))
    assert secret["DeletionPolicy"] == "Retain"  # without it the trail cannot be verified
    readers = set()
    for lid, policy in resources(template, "AWS::IAM::Policy").items():
        for s in policy["Properties"]["PolicyDocument"]["Statement"]:
            if {"Ref": secret_id} in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]):
                actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
                assert set(actions) <= {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
                readers.add(lid.removeprefix("Functions")[: -len("ServiceRoleDefaultPolicy") - 8])
    assert readers == set(FUNCTIONS)  # every function writes audit records; nothing else reads the key
    for fn in props(template, "AWS::Lambda::Function"):
        env = fn.get("Environment", {}).get("Variables", {})
        if "FACESEARCH_AUDIT_SINK" in env:
            assert env["FACESEARCH_AUDIT_KEY_SECRET"] == {"Ref": secret_id}  # the ARN, never the value


def test_opensearch_domain_is_2_19_sized_by_context_and_open_only_to_the_stack_roles(
    template: dict[str, Any],
) -> None:
    (domain,) = props(template, "AWS::OpenSearchService::Domain")
    assert domain["EngineVersion"] == "OpenSearch_2.19"
    assert domain["ClusterConfig"]["InstanceType"] == "t3.small.search"
    assert domain["ClusterConfig"]["InstanceCount"] == 1
    assert domain["EBSOptions"]["VolumeSize"] == 10
    (statement,) = domain["AccessPolicies"]["Statement"]
    principals = statement["Principal"]["AWS"]
    role_ids = set(resources(template, "AWS::IAM::Role"))
    assert all(p["Fn::GetAtt"][0] in role_ids for p in principals)
    assert len(principals) == 4 + (1 if "AdvancedSecurityOptions" in domain else 0)


# --- IAM


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for policy in props(template, "AWS::IAM::Policy"):
        out += policy["PolicyDocument"]["Statement"]
    for role in props(template, "AWS::IAM::Role"):
        for inline in role.get("Policies", []):
            out += inline["PolicyDocument"]["Statement"]
    return out


def test_no_wildcard_resources_or_actions_except_where_aws_requires_them(template: dict[str, Any]) -> None:
    for s in _statements(template):
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        res = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        assert not [a for a in actions if a == "*" or a.endswith(":*")], s
        if "*" in res:
            assert set(actions) <= WILDCARD_RESOURCE_ONLY, s


def test_each_function_gets_only_its_own_stores(template: dict[str, Any]) -> None:
    def policy_of(name: str) -> str:
        (lid,) = [lid for lid in resources(template, "AWS::IAM::Policy") if lid.startswith(f"Functions{name}")]
        return json.dumps(template["Resources"][lid]["Properties"]["PolicyDocument"])

    query_id = logical_id(template, "AWS::S3::Bucket", "BucketsQuery")
    table_id = logical_id(template, "AWS::DynamoDB::Table", "Idempotency")
    assert query_id in policy_of("SearchFaces") and query_id not in policy_of("IndexFaces")
    assert table_id not in policy_of("Api")
    assert "events:PutEvents" in policy_of("SearchFaces") and "events:PutEvents" not in policy_of("IndexFaces")
    assert "es:ESHttpPut" in policy_of("IndexFaces") and "es:ESHttpPut" not in policy_of("SearchFaces")


# --- observability and outputs


def test_alarms_cover_errors_throttles_dlqs_iterator_age_and_the_api(template: dict[str, Any]) -> None:
    alarms = props(template, "AWS::CloudWatch::Alarm")
    by_metric: dict[str, int] = {}
    for a in alarms:
        by_metric[a["MetricName"]] = by_metric.get(a["MetricName"], 0) + 1
        assert a["AlarmActions"], "every alarm notifies the alarm topic"
    assert by_metric["Errors"] == 4 and by_metric["Throttles"] == 4
    assert by_metric["ApproximateNumberOfMessagesVisible"] == 3
    assert by_metric["IteratorAge"] == 1
    assert by_metric["5XXError"] == 1
    (latency,) = [a for a in alarms if a["MetricName"] == "Latency"]
    assert latency["ExtendedStatistic"] == "p95"
    assert len(resources(template, "AWS::CloudWatch::Dashboard")) == 1


def test_outputs_carry_the_agreed_names(template: dict[str, Any]) -> None:
    assert set(OUTPUTS) <= set(template["Outputs"])


# --- the production-shaped variant


def test_vpc_variant_places_domain_and_functions_in_private_subnets(vpc_template: dict[str, Any]) -> None:
    (domain,) = props(vpc_template, "AWS::OpenSearchService::Domain")
    assert domain["VPCOptions"]["SubnetIds"] and domain["VPCOptions"]["SecurityGroupIds"]
    assert domain["ClusterConfig"]["ZoneAwarenessEnabled"] is True
    assert domain["ClusterConfig"]["InstanceCount"] == 2
    for lid, fn in resources(vpc_template, "AWS::Lambda::Function").items():
        assert fn["Properties"]["VpcConfig"]["SubnetIds"], lid
        if lid.startswith("Functions"):
            assert fn["Properties"]["Architectures"] == ["x86_64"]
    assert resources(vpc_template, "AWS::EC2::FlowLog")
    (frames,) = [
        p
        for lid, p in ((k, r["Properties"]) for k, r in resources(vpc_template, "AWS::Kinesis::Stream").items())
        if lid.startswith("StreamsFrames")
    ]
    assert frames["ShardCount"] == 4
    assert not resources(vpc_template, "AWS::Kinesis::StreamConsumer")  # consumer=shared: a polling mapping
    audit_id = logical_id(vpc_template, "AWS::S3::Bucket", "BucketsAudit")
    lock = vpc_template["Resources"][audit_id]["Properties"]["ObjectLockConfiguration"]
    assert lock["Rule"]["DefaultRetention"] == {"Mode": "COMPLIANCE", "Days": 30}
    assert vpc_template["Resources"][audit_id]["DeletionPolicy"] == "Retain"  # even with removalPolicy=destroy


def test_video_off_drops_streams_consumer_and_match_frames(no_video_template: dict[str, Any]) -> None:
    t = no_video_template
    assert not resources(t, "AWS::Kinesis::Stream") and not resources(t, "AWS::Kinesis::StreamConsumer")
    assert len(resources(t, "AWS::DynamoDB::Table")) == 1  # no video state table
    functions = [lid for lid in resources(t, "AWS::Lambda::Function") if lid.startswith("Functions")]
    assert len(functions) == 3 and not [lid for lid in functions if "MatchFrames" in lid]
    assert set(OUTPUTS) - set(t["Outputs"]) == {"FramesStreamName", "ResultsStreamName"}
    assert "IteratorAge" not in {a["MetricName"] for a in props(t, "AWS::CloudWatch::Alarm")}
