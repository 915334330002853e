"""api: API Gateway REST proxy requests (IAM auth) carrying Rekognition's JSON 1.1 protocol."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import numpy as np
import pytest
from functions_harness import (  # noqa: F401  (aws is a fixture)
    AUDIT,
    GALLERY,
    QUERIES,
    DecodeOnlyEngine,
    aws,
    lambda_context,
    load_function,
    sample,
)

from facesearch.engine.similarity import DEFAULT_THRESHOLD
from facesearch.store.records import FaceRecord

ANALYST = "arn:aws:iam::123456789012:user/analyst"


@pytest.fixture
def app(aws):  # noqa: F811
    module = load_function("api")
    module.runtime.service.engine = DecodeOnlyEngine()
    # The sample image operations name these objects; they are not photos, so each stops at decoding.
    aws["s3"].put_object(Bucket=GALLERY, Key="collections/staff/alice/portrait.jpg", Body=b"not a photo")
    aws["s3"].put_object(Bucket=QUERIES, Key="staff/visitor.jpg", Body=b"not a photo either")
    return module


def call(app, operation: str | None = None, body=None, *, event: dict | None = None, **headers):
    event = event or sample(f"apigw/{operation or 'ListCollections'}.json")
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    for name, value in headers.items():
        name = name.replace("_", "-")
        if value is None:
            event["headers"].pop(name, None)
        else:
            event["headers"][name] = value
    response = app.handler(event, lambda_context())
    return response["statusCode"], response["headers"], json.loads(response["body"])


# Every sample event, in an order that makes sense for one collection, and what it must answer without a model.
EXPECTED = [
    ("CreateCollection", 200, None),
    ("DescribeCollection", 200, None),
    ("ListCollections", 200, None),
    ("IndexFaces", 400, "InvalidImageFormatException"),
    ("ListFaces", 200, None),
    ("SearchFaces", 400, "ResourceNotFoundException"),
    ("SearchFacesByImage", 400, "InvalidImageFormatException"),
    ("CompareFaces", 400, "InvalidImageFormatException"),
    ("DetectFaces", 400, "InvalidImageFormatException"),
    ("CreateUser", 200, None),
    ("ListUsers", 200, None),
    ("AssociateFaces", 200, None),
    ("SearchUsers", 400, "ResourceNotFoundException"),
    ("SearchUsersByImage", 400, "InvalidImageFormatException"),
    ("DisassociateFaces", 200, None),
    ("DeleteUser", 200, None),
    ("DeleteFaces", 200, None),
    ("EraseFaces", 200, None),
    ("PurgeDeletedFaces", 200, None),
    ("DeleteCollection", 200, None),
]


def test_every_sample_request_reaches_its_operation(app):
    answers = {}
    for operation, status, error in EXPECTED:
        got_status, headers, body = call(app, operation)
        assert (operation, got_status, headers.get("x-amzn-ErrorType")) == (operation, status, error), body
        assert headers["Content-Type"] == "application/x-amz-json-1.1"
        answers[operation] = body
    assert answers["ListCollections"]["CollectionIds"] == ["staff"]
    assert answers["DescribeCollection"]["FaceMatchThresholdFloor"] == DEFAULT_THRESHOLD
    assert isinstance(answers["DescribeCollection"]["CreationTimestamp"], float)  # epoch seconds, as AWS sends
    assert answers["AssociateFaces"]["UnsuccessfulFaceAssociations"][0]["Reasons"] == ["FACE_NOT_FOUND"]
    assert answers["ListUsers"]["Users"] == [{"UserId": "alice", "UserStatus": "CREATED"}]


def test_request_id_and_the_callers_iam_arn_go_into_the_audit_record(app, aws):  # noqa: F811
    event = sample("apigw/CreateCollection.json")
    status, headers, _ = call(app, event=event)
    assert status == 200 and headers["x-amzn-RequestId"] == event["requestContext"]["requestId"]
    keys = [o["Key"] for o in aws["s3"].list_objects_v2(Bucket=AUDIT)["Contents"]]
    record = json.loads(aws["s3"].get_object(Bucket=AUDIT, Key=keys[-1])["Body"].read())
    assert (record["operation"], record["caller"], record["request_id"]) == (
        "CreateCollection",
        ANALYST,
        event["requestContext"]["requestId"],
    )


def _store_faces(app, n: int) -> list[str]:
    rng = np.random.default_rng(7)
    base = rng.normal(size=128).astype(np.float32)
    records = []
    for i in range(n):
        v = base + rng.normal(scale=0.01, size=128).astype(np.float32)  # near-identical faces: they match
        records.append(
            FaceRecord(
                face_id=str(uuid.UUID(int=i + 1)),
                image_id=str(uuid.uuid4()),
                vector=v / np.linalg.norm(v) * 0.4,
                bounding_box={"Width": 0.5, "Height": 0.5, "Left": 0.1, "Top": 0.1},
                confidence=0.99,
                indexed_at=datetime.now(UTC),
                external_image_id=f"person{i}",
                source=f"s3://{GALLERY}/collections/staff/person{i}/a.jpg",
            )
        )
    app.runtime.service.store.add_faces("staff", records)
    return [r.face_id for r in records]


def test_a_search_answers_with_the_review_flag_and_is_audited_first(app, aws):  # noqa: F811
    call(app, "CreateCollection")
    ids = _store_faces(app, 3)
    status, _, body = call(app, "SearchFaces", {"CollectionId": "staff", "FaceId": ids[0], "FaceMatchThreshold": 90})
    assert status == 200 and len(body["FaceMatches"]) == 2
    assert all(m["ReviewRequired"] is True and "MatchExplanation" in m for m in body["FaceMatches"])
    objects = aws["s3"].list_objects_v2(Bucket=AUDIT)["Contents"]
    last = json.loads(aws["s3"].get_object(Bucket=AUDIT, Key=objects[-1]["Key"])["Body"].read())
    assert last["operation"] == "SearchFaces" and len(last["results"]) == 2


def test_a_search_whose_audit_record_cannot_be_written_returns_no_result(app):
    call(app, "CreateCollection")
    ids = _store_faces(app, 2)
    app.runtime.service.audit.bucket = "no-such-audit-bucket"
    status, headers, body = call(app, "SearchFaces", {"CollectionId": "staff", "FaceId": ids[0]})
    assert (status, headers["x-amzn-ErrorType"]) == (503, "ServiceUnavailableException")
    assert "FaceMatches" not in body


def test_a_threshold_below_the_floor_is_refused(app):
    call(app, "CreateCollection")
    ids = _store_faces(app, 1)
    status, _, body = call(app, "SearchFaces", {"CollectionId": "staff", "FaceId": ids[0], "FaceMatchThreshold": 50})
    assert (status, body["__type"]) == (400, "InvalidParameterException") and "floor" in body["message"]


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"body": '{"CollectionId": "staff"'}, 400, "SerializationException"),
        ({"body": "[1, 2, 3]"}, 400, "SerializationException"),
        ({"X_Amz_Target": "RekognitionService.DetectLabels"}, 400, "UnknownOperationException"),
        ({"X_Amz_Target": "DynamoDB_20120810.ListTables"}, 400, "UnknownOperationException"),
        ({"X_Amz_Target": None}, 400, "UnknownOperationException"),
        ({"Content_Type": "application/json"}, 415, "UnsupportedMediaTypeException"),
        ({"Content_Type": None}, 415, "UnsupportedMediaTypeException"),
        ({"body": json.dumps({"CollectionId": "x" * (10 * 1024 * 1024)})}, 413, "RequestEntityTooLargeException"),
    ],
    ids=["truncated-json", "not-an-object", "unknown-operation", "foreign-target", "no-target", "json", "none", "big"],
)
def test_bad_requests_get_aws_error_shapes(app, change, status, error):
    body = change.pop("body", None)
    got, headers, doc = call(app, "ListCollections", body, **change)
    assert (got, headers["x-amzn-ErrorType"], doc["__type"]) == (status, error, error)
    assert doc["message"] and uuid.UUID(headers["x-amzn-RequestId"])


def test_header_names_are_case_insensitive_and_base64_bodies_are_read(app):
    event = sample("apigw/CreateCollection.json")
    event["headers"] = {k.lower(): v for k, v in event["headers"].items()}
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    status, _, body = call(app, event=event)
    assert status == 200 and body["CollectionArn"].endswith(":collection/staff")


def test_each_request_emits_latency_and_errors_by_kind_as_emf(app, capsys):
    call(app, "DescribeCollection")  # no collection yet: ResourceNotFoundException
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert any("RequestLatency" in d for d in documents)
    assert [d["Kind"] for d in documents if "Errors" in d] == ["ResourceNotFoundException"]
