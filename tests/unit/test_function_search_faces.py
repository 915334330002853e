"""search_faces: S3 uploads to the query bucket, through SQS. Every case here fails before face detection; the
search of real faces (result object, FaceSearchCompleted, re-delivery) is in tests/integration."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from functions_harness import (  # noqa: F401  (aws is a fixture)
    QUERIES,
    RESULTS,
    DecodeOnlyEngine,
    aws,
    jpeg_bytes,
    lambda_context,
    load_function,
    put_object,
    read_json,
    s3_sqs_event,
    sample,
    staff_function,
    tapped_events,
    versions,
)
from functions_harness import invoke as run

from facesearch.settings import SettingsError

PUT = "sqs_s3_query_put.json"


@pytest.fixture
def app(aws):  # noqa: F811
    return staff_function("search_faces")


def result(aws, key):  # noqa: F811
    return read_json(aws["s3"], RESULTS, f"results/{key}.json")


def test_the_s3_test_event_is_acknowledged(app, aws):  # noqa: F811
    assert run(app, sample("sqs_s3_test_event.json")) == {"batchItemFailures": []}
    assert aws["s3"].list_objects_v2(Bucket=RESULTS).get("KeyCount", 0) == 0
    assert tapped_events(aws["sqs"], aws["tap_url"]) == []


@pytest.mark.parametrize(
    ("key", "body", "code"),
    [
        ("staff/visitor.jpg", b"%PDF-1.7 not a photo", "InvalidImageFormatException"),
        ("staff/empty.jpg", b"", "InvalidImageFormatException"),
        ("staff/huge.jpg", b"\x89PNG" + b"\0" * (15 * 1024 * 1024), "ImageTooLargeException"),
        ("nobody/visitor.jpg", jpeg_bytes(), "ResourceNotFoundException"),
        ("visitor.jpg", jpeg_bytes(), "InvalidParameterException"),
        ("staff/day 1/visitor.jpg", jpeg_bytes(), "InvalidParameterException"),
    ],
    ids=["non-image", "empty", "over-15MB", "unknown-collection", "no-collection-in-key", "nested-key"],
)
def test_a_bad_query_gets_an_error_result_and_no_event_and_is_not_retried(app, aws, key, body, code):  # noqa: F811
    obj = put_object(aws["s3"], QUERIES, key, body)
    assert run(app, s3_sqs_event(PUT, [obj])) == {"batchItemFailures": []}
    doc = result(aws, key)
    assert doc["Status"] == "FAILED" and doc["Error"]["Code"] == code
    assert tapped_events(aws["sqs"], aws["tap_url"]) == []


def test_redelivery_of_a_failed_query_writes_one_result(app, aws):  # noqa: F811
    obj = put_object(aws["s3"], QUERIES, "staff/v.jpg", b"garbage")
    event = s3_sqs_event(PUT, [obj])
    run(app, event)
    run(app, event)
    aws["s3"].put_bucket_versioning(Bucket=RESULTS, VersioningConfiguration={"Status": "Enabled"})
    assert versions(aws["s3"], RESULTS, "results/staff/v.jpg.json") == 1


def test_a_malformed_message_goes_back_to_the_queue(app):
    with pytest.raises(BatchProcessingError):
        run(app, s3_sqs_event(PUT, [{"body": "<xml>not json</xml>"}]))


def test_the_event_bus_is_a_required_setting(aws, monkeypatch):  # noqa: F811
    monkeypatch.delenv("FACESEARCH_EVENT_BUS")
    with pytest.raises(SettingsError, match="FACESEARCH_EVENT_BUS"):
        load_function("search_faces")
