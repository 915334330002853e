"""The local cloud deploys a CDK app with every kind of resource facesearch uses, and the resources really work.

Each test polls for a side effect (an item written by a Lambda, a message in a DLQ, a log line) instead of trusting
a status code. The last test destroys the stack and stops everything, and checks no process is left behind.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from facesearch.devtools import localcloud

pytestmark = pytest.mark.localcloud


def eventually(probe: Callable[[], Any], *, timeout: float = 90.0, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: not seen within {timeout:.0f}s (last: {last!r})")


def item(aws, outputs: dict, pk: str) -> dict | None:
    return aws("dynamodb").get_item(TableName=outputs["TableName"], Key={"pk": {"S": pk}}).get("Item")


def http_get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_status_names_the_endpoint_and_the_stack_outputs(local_cloud):
    status = localcloud.status()
    assert status["running"] is True
    assert status["endpoint_url"] == local_cloud["endpoint_url"]
    assert status["gallery_bucket"] == local_cloud["stack_outputs"]["GalleryBucketName"]
    assert status["frames_stream"] == local_cloud["stack_outputs"]["FramesStreamName"]
    assert status["api_url"].startswith(f"{status['endpoint_url']}/_aws/execute-api/")


def test_bucket_notifications_were_configured_by_the_cdk_custom_resource(local_cloud, aws):
    config = aws("s3").get_bucket_notification_configuration(Bucket=local_cloud["gallery_bucket"])
    queues = config.get("QueueConfigurations", [])
    assert len(queues) == 1 and queues[0]["Events"] == ["s3:ObjectCreated:*"]


def test_an_upload_reaches_the_lambda_through_sqs_and_the_layer_is_on_its_path(local_cloud, aws):
    outputs = local_cloud["stack_outputs"]
    key = f"upload-{uuid.uuid4().hex[:8]}.jpg"
    began = time.monotonic()
    aws("s3").put_object(Bucket=local_cloud["gallery_bucket"], Key=key, Body=b"not really a jpeg")
    written = eventually(lambda: item(aws, outputs, f"s3-{key}"), what="the consumer's table item")
    local_cloud["timings_s"]["s3_to_lambda_first"] = round(time.monotonic() - began, 2)
    assert written["model"] == {"S": "layer-model-v1"}, "FACESEARCH_MODEL_DIR=/opt/models reads the layer's file"
    assert 0 < int(written["remaining_ms"]["N"]) <= 5000, "the function's timeout reaches the context"


def test_a_kinesis_record_reaches_its_lambda(local_cloud, aws):
    data = f"frame-{uuid.uuid4().hex[:8]}"
    began = time.monotonic()
    aws("kinesis").put_record(StreamName=local_cloud["frames_stream"], Data=data.encode(), PartitionKey="camera-1")
    eventually(lambda: item(aws, local_cloud["stack_outputs"], f"kinesis-{data}"), what="the stream consumer's item")
    local_cloud["timings_s"]["kinesis_to_lambda_first"] = round(time.monotonic() - began, 2)


def test_the_rest_api_serves_the_lambda_and_the_domain_serves_the_real_opensearch_node(local_cloud, aws):
    key = f"api-{uuid.uuid4().hex[:8]}"
    aws("dynamodb").put_item(TableName=local_cloud["stack_outputs"]["TableName"], Item={"pk": {"S": key}})
    status, body = http_get(f"{local_cloud['api_url']}items/{key}")
    assert (status, body["pk"]) == (200, key)
    status, body = http_get(f"{local_cloud['api_url']}items/missing")
    assert status == 404
    status, body = http_get(f"{local_cloud['api_url']}search")
    assert status == 200 and body["version"]["distribution"] == "opensearch"
    with urllib.request.urlopen(f"http://{local_cloud['opensearch_endpoint']}/_cat/plugins", timeout=30) as response:
        assert b"opensearch-knn" in response.read()


def test_a_message_the_lambda_keeps_failing_ends_in_the_dead_letter_queue(local_cloud, aws):
    outputs = local_cloud["stack_outputs"]
    key = f"poison-{uuid.uuid4().hex[:8]}.jpg"
    aws("s3").put_object(Bucket=local_cloud["gallery_bucket"], Key=key, Body=b"x")
    sqs = aws("sqs")

    def dead_letters() -> list[dict]:
        return sqs.receive_message(QueueUrl=outputs["DlqUrl"], MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )

    messages = eventually(dead_letters, timeout=120, what="the poison message in the DLQ")
    assert any(key in m["Body"] for m in messages)
    assert item(aws, outputs, f"s3-{key}") is None


def test_lambda_logs_and_emf_metrics_are_in_cloudwatch_logs(local_cloud, aws):
    logs = aws("logs")
    function = local_cloud["stack_outputs"]["ConsumerFunctionName"]
    key = f"logged-{uuid.uuid4().hex[:8]}.jpg"
    began = time.monotonic()
    aws("s3").put_object(Bucket=local_cloud["gallery_bucket"], Key=key, Body=b"x")
    eventually(lambda: item(aws, local_cloud["stack_outputs"], f"s3-{key}"), what="the consumer's item")
    local_cloud["timings_s"]["s3_to_lambda_after_idle"] = round(time.monotonic() - began, 2)

    def messages() -> str:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{function}").get("events", [])
        return "".join(e["message"] for e in events)

    text = eventually(
        lambda: (t := messages()) and "CloudWatchMetrics" in t and "REPORT RequestId" in t and t,
        what="the consumer's log lines",
    )
    assert "START RequestId" in text and "Billed Duration" in text


def test_the_stack_destroys_and_down_leaves_no_process_behind(local_cloud, aws):
    state = localcloud.read_state()
    local_cloud["timings_s"]["destroy"] = localcloud.destroy(
        local_cloud["endpoint_url"],
        app_dir=localcloud.Path(state["app_dir"]),
        app=state["app"],
        log=localcloud.state_dir() / "cdk.log",
    )
    stacks = aws("cloudformation").list_stacks(StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE"])
    assert [s["StackName"] for s in stacks["StackSummaries"] if s["StackName"] == "LocalCloudProbe"] == []
    assert aws("s3").list_buckets()["Buckets"] == [] or all(
        b["Name"] != local_cloud["gallery_bucket"] for b in aws("s3").list_buckets()["Buckets"]
    )
    instance = state["localstack"]["instance"]
    assert localcloud.instance_processes(instance), "LocalStack and its children carry the instance marker"
    opensearch_pid = state["opensearch"]["pid"]
    localcloud.down()
    assert localcloud.instance_processes(instance) == []
    assert not localcloud._process_alive(opensearch_pid)
    assert localcloud.status() == {"running": False}
