"""Drive the Lambda handlers in functions/ as Lambda would: real sample events from events/, AWS through moto
in-process (S3, SQS, DynamoDB, EventBridge), the real service on the embedded store.

Handlers build their service at import (cold start), so each test imports a fresh copy after its environment is
set. Unit tests swap in ``DecodeOnlyEngine``: the real decoder, and a loud failure if a test ever reaches face
detection (unit tests load no models; tests that analyse faces live in tests/integration with the real engine).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facesearch.engine.decode import decode_image

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events"
GALLERY = "facesearch-gallery"
QUERIES = "facesearch-queries"
RESULTS = "facesearch-results"
AUDIT = "facesearch-audit"
TABLE = "facesearch-idempotency"
BUS = "facesearch-events"
REGION = "us-east-1"


class DecodeOnlyEngine:
    """Decodes like the real engine (so bad images fail exactly as in production) and stops there."""

    def analyze(self, data: bytes, **_: Any) -> Any:
        decode_image(data)
        raise AssertionError("a unit test reached face detection: it belongs in tests/integration")


@dataclass
class LambdaContext:
    function_name: str = "facesearch-test"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:facesearch-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def function_env(monkeypatch: Any, home: Path, **extra: str) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "FACESEARCH_HOME": str(home),
        "FACESEARCH_RESULTS_BUCKET": RESULTS,
        "FACESEARCH_IDEMPOTENCY_TABLE": TABLE,
        "FACESEARCH_EVENT_BUS": BUS,
        "FACESEARCH_AUDIT_SINK": "s3",
        "FACESEARCH_AUDIT_BUCKET": AUDIT,
        "POWERTOOLS_SERVICE_NAME": "facesearch",
        "POWERTOOLS_METRICS_NAMESPACE": "facesearch",
        "POWERTOOLS_TRACE_DISABLED": "true",
        **extra,
    }
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "POWERTOOLS_IDEMPOTENCY_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def create_aws_resources() -> dict[str, Any]:
    """Inside ``moto.mock_aws``: the buckets, the idempotency table, the bus with a rule that copies every
    facesearch event into an SQS queue the test can read."""
    import boto3

    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (GALLERY, RESULTS):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket=QUERIES)
    s3.create_bucket(Bucket=AUDIT, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=AUDIT,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
        },
    )
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="facesearch-events-tap")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name=BUS)
    events.put_rule(Name="tap", EventBusName=BUS, EventPattern=json.dumps({"source": ["facesearch"]}))
    events.put_targets(Rule="tap", EventBusName=BUS, Targets=[{"Id": "tap", "Arn": queue_arn}])
    return {"s3": s3, "ddb": ddb, "sqs": sqs, "tap_url": queue_url}


def load_function(name: str) -> Any:
    """A fresh import of functions/<name>/app.py (its cold start runs now, with the current environment)."""
    module_name = f"facesearch_function_{name}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, REPO / "functions" / name / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def s3_sqs_event(template: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The sample SQS event ``template`` with one message per object: each dict may set ``key`` (plain; it is
    URL-encoded as S3 does), ``bucket``, ``version`` and ``etag`` (None removes the field), or ``body`` (raw)."""
    from urllib.parse import quote_plus

    base = sample(template)
    record = base["Records"][0]
    records = []
    for n, obj in enumerate(objects):
        message = copy.deepcopy(record)
        message["messageId"] = f"{uuid.UUID(int=n)}"
        if "body" in obj:
            message["body"] = obj["body"]
        else:
            body = json.loads(message["body"])
            s3 = body["Records"][0]["s3"]
            if "bucket" in obj:
                s3["bucket"]["name"] = obj["bucket"]
                s3["bucket"]["arn"] = f"arn:aws:s3:::{obj['bucket']}"
            if "key" in obj:
                s3["object"]["key"] = quote_plus(obj["key"], safe="/")
            for field_name, event_field in (("version", "versionId"), ("etag", "eTag")):
                if field_name in obj:
                    if obj[field_name] is None:
                        s3["object"].pop(event_field, None)
                    else:
                        s3["object"][event_field] = obj[field_name]
            message["body"] = json.dumps(body)
        records.append(message)
    return {"Records": records}


def put_object(s3: Any, bucket: str, key: str, body: bytes, **kw: Any) -> dict[str, Any]:
    """Put and return the notification fields of the new object (key, version, etag)."""
    response = s3.put_object(Bucket=bucket, Key=key, Body=body, **kw)
    return {"bucket": bucket, "key": key, "version": response.get("VersionId"), "etag": response["ETag"].strip('"')}


def read_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def versions(s3: Any, bucket: str, key: str) -> int:
    listed = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    return sum(1 for v in listed if v["Key"] == key)


def tapped_events(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    out = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return out
        for m in messages:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def jpeg_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    """A real JPEG with no face in it (a flat colour): decodes fine, so only face detection could reject it."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 160, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


def lambda_context() -> LambdaContext:
    return LambdaContext()


try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def aws(monkeypatch: Any, tmp_path: Path) -> Any:
        """moto for every AWS call of the test, the functions' environment, and the resources they expect."""
        from moto import mock_aws

        function_env(monkeypatch, tmp_path / "home")
        with mock_aws():
            yield create_aws_resources()


def staff_function(name: str) -> Any:
    """A function module as Lambda would load it, with a ``staff`` collection and an engine that only decodes."""
    module = load_function(name)
    module.runtime.service.engine = DecodeOnlyEngine()
    module.runtime.service.create_collection(CollectionId="staff")
    return module


def invoke(app: Any, event: dict[str, Any]) -> Any:
    return app.handler(event, lambda_context())
