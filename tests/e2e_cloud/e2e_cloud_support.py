"""Helpers and shared state of the end-to-end tests (a module with a unique name: every tests/ folder has a
conftest.py, so `from conftest import` would depend on collection order)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

TIMINGS: dict[str, Any] = {}
COLLECTION = "e2e-faces-dev"
STACK = "FaceSearch"


def wait_for(what: str, probe: Callable[[], Any], *, timeout: float, interval: float = 1.0) -> Any:
    """Poll `probe` until it returns something truthy: side effects arrive asynchronously, status codes prove
    nothing."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})", pytrace=False)


def gallery_key(identity: str, name: str) -> str:
    return f"collections/{COLLECTION}/{identity}/{name}"


def read_json(s3: Any, bucket: str, key: str) -> dict | None:
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def stack_queues(aws: Callable[[str], Any]) -> dict[str, str]:
    """The stack's SQS queues: logical id → URL (IndexQueueDlq…, IndexQueue…, SearchQueue…)."""
    cfn, sqs = aws("cloudformation"), aws("sqs")
    queues = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=STACK):
        for res in page["StackResourceSummaries"]:
            if res["ResourceType"] == "AWS::SQS::Queue":
                physical = res["PhysicalResourceId"]
                url = physical if physical.startswith("http") else sqs.get_queue_url(QueueName=physical)["QueueUrl"]
                queues[res["LogicalResourceId"]] = url
    return queues
