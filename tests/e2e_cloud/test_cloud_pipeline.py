"""The deployed stack end to end: S3 → SQS → Lambda → OpenSearch, the REST API with the stock boto3 client, the
dead-letter path, logs and metrics. Every assertion reads a side effect (an object, a document in the domain, a
message, a log event), never only a status code."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from e2e_cloud_support import COLLECTION, STACK, TIMINGS, gallery_key, read_json, wait_for

from facesearch.aws.audit import S3AuditLog
from facesearch.devtools import localcloud

pytestmark = pytest.mark.localcloud


def _list_faces(rekognition: Any) -> list[dict]:
    faces: list[dict] = []
    token: str | None = None
    while True:
        page = rekognition.list_faces(
            CollectionId=COLLECTION, MaxResults=100, **({"NextToken": token} if token else {})
        )
        faces += page["Faces"]
        token = page.get("NextToken")
        if not token:
            return faces


def _log_events(aws: Callable[[str], Any], function: str, pattern: str | None = None) -> list[str]:
    logs = aws("logs")
    group = f"/aws/lambda/{STACK}-{function}"
    try:
        kwargs: dict[str, Any] = {"logGroupName": group}
        if pattern:
            kwargs["filterPattern"] = pattern
        return [
            event["message"]
            for page in logs.get_paginator("filter_log_events").paginate(**kwargs)
            for event in page["events"]
        ]
    except logs.exceptions.ResourceNotFoundException:
        return []


def _emf(messages: list[str]) -> list[dict]:
    out = []
    for message in messages:
        for line in message.splitlines():
            line = line.strip()
            if line.startswith("{") and '"_aws"' in line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return out


def test_the_dev_gallery_is_indexed_face_by_face(gallery: dict, rekognition: Any, labelled: dict[str, str]) -> None:
    reports = gallery["reports"]
    failed = {key: doc.get("Error") for key, doc in reports.items() if doc["Status"] != "INDEXED"}
    assert not failed, f"images not indexed: {failed}"
    by_report = {
        record["Face"]["FaceId"]: record["Face"]["ExternalImageId"]
        for doc in reports.values()
        for record in doc["FaceRecords"]
    }
    assert len(by_report) >= len(labelled)  # every labelled image has its person's face (some have more faces)
    listed = {face["FaceId"]: face["ExternalImageId"] for face in _list_faces(rekognition)}
    assert listed == by_report  # what the reports say is exactly what the collection holds
    assert set(listed.values()) == set(labelled.values())
    assert rekognition.describe_collection(CollectionId=COLLECTION)["FaceCount"] == len(by_report)


def test_a_group_photo_in_the_query_bucket_names_the_people_in_it(
    cloud: dict, aws: Callable[[str], Any], gallery: dict, faces_dev: Path
) -> None:
    s3 = aws("s3")
    key = f"{COLLECTION}/couple-{uuid.uuid4().hex[:8]}.jpg"
    started = time.monotonic()
    s3.put_object(Bucket=cloud["query_bucket"], Key=key, Body=(faces_dev / "images" / "couple.jpg").read_bytes())
    result = wait_for(
        "the search result", lambda: read_json(s3, cloud["results_bucket"], f"results/{key}.json"), timeout=300
    )
    TIMINGS["query_to_result_s"] = round(time.monotonic() - started, 2)
    assert result["Status"] == "SEARCHED", result.get("Error")
    faces = result["SearchedFaces"]
    assert len(faces) == 2
    named = [face["FaceMatches"][0]["Face"]["ExternalImageId"] for face in faces if face["FaceMatches"]]
    assert named == ["person01"]  # person01 is one of the couple; the other is not in the gallery
    assert all(m["Similarity"] >= 90 for face in faces for m in face["FaceMatches"])


def test_the_stock_rekognition_client_searches_through_the_rest_api(
    rekognition: Any, gallery: dict, faces_dev: Path, labelled: dict[str, str]
) -> None:
    probe = next(name for name, who in sorted(labelled.items()) if who == "person02")
    out = rekognition.search_faces_by_image(
        CollectionId=COLLECTION, Image={"Bytes": (faces_dev / "images" / probe).read_bytes()}, MaxFaces=5
    )
    assert out["FaceMatches"] and {m["Face"]["ExternalImageId"] for m in out["FaceMatches"]} == {"person02"}
    with pytest.raises(ClientError) as unknown:
        rekognition.search_faces_by_image(CollectionId="no-such-collection", Image={"Bytes": b"\xff\xd8junk"})
    assert unknown.value.response["Error"]["Code"] in ("ResourceNotFoundException", "InvalidImageFormatException")
    with pytest.raises(rekognition.exceptions.InvalidImageFormatException):
        rekognition.search_faces_by_image(CollectionId=COLLECTION, Image={"Bytes": b"this is not an image"})
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        rekognition.describe_collection(CollectionId="no-such-collection")


def test_each_search_leaves_a_locked_audit_record_that_a_reviewer_reads_and_verifies(
    cloud: dict, aws: Callable[[str], Any], rekognition: Any, gallery: dict, faces_dev: Path, labelled: dict[str, str]
) -> None:
    """Who searched for whom, read back from the deployed Object Lock bucket with the reviewer's command."""
    probe = next(name for name, who in sorted(labelled.items()) if who == "person03")
    image = (faces_dev / "images" / probe).read_bytes()
    rekognition.search_faces_by_image(CollectionId=COLLECTION, Image={"Bytes": image}, MaxFaces=3)
    digest = hashlib.sha256(image).hexdigest()

    def the_record() -> Any:
        originals, findings = S3AuditLog(cloud["audit_bucket"], client=aws("s3")).scan()
        mine = [
            v
            for v in originals
            if v.record
            and v.record.get("query_image_sha256") == digest
            and v.record["operation"] == "SearchFacesByImage"  # (the gallery's IndexFaces saw the same photo)
        ]
        return (mine[0], findings, originals) if mine else None

    version, findings, originals = wait_for("the search's audit record", the_record, timeout=60)
    record = version.record
    assert record["collection_id"] == COLLECTION and record["status"] == "ok"
    assert record["caller"] and record["request_id"]  # who, and the API request that did it
    assert {r["ExternalImageId"] for r in record["results"]} == {"person03"}
    assert version.lock_mode == "GOVERNANCE" and version.retain_until is not None  # the stack's default retention
    assert record["seq"] >= 1 and record["mac"] and record["chain"]  # sealed with the key from Secrets Manager
    assert findings == []
    operations = {v.record["operation"] for v in originals if v.record}
    assert {"CreateCollection", "IndexFaces", "SearchFacesByImage"} <= operations  # the API and both S3 handlers

    env = {**os.environ, "AWS_ENDPOINT_URL": cloud["endpoint_url"], "AWS_DEFAULT_REGION": localcloud.REGION}
    env.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"})
    env.pop("FACESEARCH_AUDIT_KEY", None)
    env["FACESEARCH_AUDIT_KEY_SECRET"] = cloud["audit_key_secret"]  # the reviewer's read access to the seal key
    verify = subprocess.run(
        [
            str(Path(sys.executable).with_name("facesearch")),
            "audit",
            "verify",
            "--s3",
            f"s3://{cloud['audit_bucket']}/audit/",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "chain(s) verified with the audit key: OK" in verify.stderr, verify.stderr


def test_deleting_a_gallery_object_removes_its_faces_from_the_domain(
    cloud: dict, aws: Callable[[str], Any], gallery: dict, rekognition: Any, labelled: dict[str, str]
) -> None:
    name, identity = sorted(labelled.items())[-1]
    key = gallery_key(identity, name)
    face_ids = [r["Face"]["FaceId"] for r in gallery["reports"][f"reports/{key}.json"]["FaceRecords"]]
    assert face_ids
    s3 = aws("s3")
    s3.delete_object(Bucket=cloud["gallery_bucket"], Key=key)

    def removed() -> dict | None:
        doc = read_json(s3, cloud["results_bucket"], f"reports/{key}.json")
        return doc if doc and doc["Status"] == "REMOVED" else None

    report = wait_for("the removal report", removed, timeout=300)
    assert sorted(report["DeletedFaces"]) == sorted(face_ids)
    # Straight to the domain (the local OpenSearch node behind LocalStack's endpoint): no face document is left.
    endpoint = cloud["opensearch_endpoint"]
    url = (endpoint if endpoint.startswith("http") else f"http://{endpoint}").rstrip("/")

    def hits(ids: list[str]) -> int:
        body = json.dumps({"query": {"terms": {"face_id": ids}}, "size": 0}).encode()
        request = urllib.request.Request(
            f"{url}/facesearch-*/_search", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())["hits"]["total"]["value"]

    kept = [
        r["Face"]["FaceId"]
        for r in gallery["reports"][f"reports/{gallery_key(*sorted(labelled.items())[0][::-1])}.json"]["FaceRecords"]
    ]
    assert hits(kept) == len(kept)  # the same query finds the faces that were not deleted
    assert hits(face_ids) == 0
    assert not set(face_ids) & {face["FaceId"] for face in _list_faces(rekognition)}


def test_a_non_image_upload_gets_an_error_report_and_a_metric(
    cloud: dict, aws: Callable[[str], Any], gallery: dict
) -> None:
    s3 = aws("s3")
    key = gallery_key("person01", f"notes-{uuid.uuid4().hex[:8]}.jpg")
    s3.put_object(Bucket=cloud["gallery_bucket"], Key=key, Body=b"minutes of the meeting, not a photo")
    report = wait_for(
        "the error report", lambda: read_json(s3, cloud["results_bucket"], f"reports/{key}.json"), timeout=300
    )
    assert report["Status"] == "FAILED"
    assert report["Error"]["Code"] == "InvalidImageFormatException"

    def metric() -> list[dict]:
        return [
            doc
            for doc in _emf(_log_events(aws, "index_faces", '"_aws"'))
            if "Errors" in doc and doc.get("Kind") == "InvalidImageFormatException"
        ]

    emf = wait_for("the Errors metric (EMF) in CloudWatch Logs", metric, timeout=120, interval=3)
    assert emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "facesearch"


def test_lambda_logs_and_emf_metrics_are_in_cloudwatch_logs(aws: Callable[[str], Any], gallery: dict) -> None:
    messages = _log_events(aws, "index_faces")
    structured = []
    for message in messages:
        line = message.strip()
        if line.startswith("{"):
            try:
                structured.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    assert any(doc.get("service") == "facesearch" and "level" in doc for doc in structured)  # Powertools Logger
    indexed = [doc for doc in _emf(messages) if "ImagesIndexed" in doc]
    assert (
        indexed
        and sum(
            doc["ImagesIndexed"] if isinstance(doc["ImagesIndexed"], (int, float)) else sum(doc["ImagesIndexed"])
            for doc in indexed
        )
        >= 1
    )
    assert any(m.startswith("REPORT RequestId") for m in messages)  # the platform's own line per invocation


def test_a_message_that_always_fails_ends_in_the_dead_letter_queue(aws: Callable[[str], Any], poisoned: dict) -> None:
    sqs = aws("sqs")

    def dead_lettered() -> list[dict]:
        got = sqs.receive_message(
            QueueUrl=poisoned["dlq"], MaxNumberOfMessages=10, WaitTimeSeconds=5, VisibilityTimeout=1
        )
        return [m for m in got.get("Messages", []) if poisoned["marker"] in m["Body"]]

    assert wait_for("the malformed message in the DLQ", dead_lettered, timeout=600, interval=1)
    TIMINGS["malformed_message_to_dlq_s"] = round(time.monotonic() - poisoned["sent"], 1)
