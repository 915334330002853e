"""index_faces: S3 notifications for the gallery bucket, delivered through SQS, drive the collection service.

Every case here needs no model: bad input is rejected before face detection (the unit engine refuses to
detect). Indexing real faces, re-delivery of an indexed image and a batch of real uploads are in
tests/integration/test_functions_engine.py.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import numpy as np
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from functions_harness import (  # noqa: F401  (aws is a fixture)
    GALLERY,
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
    versions,
)
from functions_harness import invoke as run

from facesearch.settings import SettingsError
from facesearch.store.records import FaceRecord

PUT = "sqs_s3_gallery_put.json"
DELETE = "sqs_s3_gallery_delete.json"


@pytest.fixture
def app(aws):  # noqa: F811
    return staff_function("index_faces")


def report(aws, key):  # noqa: F811
    return read_json(aws["s3"], RESULTS, f"reports/{key}.json")


def emitted_metrics(capsys) -> list[dict]:
    """Powertools Metrics writes EMF documents as JSON lines on stdout."""
    out = []
    for line in capsys.readouterr().out.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "_aws" in doc:
            out.append(doc)
    return out


def test_the_s3_test_event_is_acknowledged_and_writes_nothing(app, aws):  # noqa: F811
    assert run(app, sample("sqs_s3_test_event.json")) == {"batchItemFailures": []}
    assert aws["s3"].list_objects_v2(Bucket=RESULTS).get("KeyCount", 0) == 0


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"this is a text file, not a photo", "InvalidImageFormatException", "not a"),
        (b"", "InvalidImageFormatException", "is empty"),
        (b"\xff\xd8\xff" + b"\0" * (15 * 1024 * 1024), "ImageTooLargeException", "the limit is 15728640"),
    ],
    ids=["non-image", "empty", "over-15MB"],
)
def test_a_bad_object_gets_an_error_report_a_metric_and_no_retry(app, aws, capsys, body, code, message):  # noqa: F811
    key = "collections/staff/alice/upload.jpg"
    obj = put_object(aws["s3"], GALLERY, key, body)
    assert run(app, s3_sqs_event(PUT, [obj])) == {"batchItemFailures": []}  # permanent: not retried
    doc = report(aws, key)
    assert doc["Status"] == "FAILED" and doc["Error"]["Code"] == code and message in doc["Error"]["Message"]
    assert doc["Object"] == {"Bucket": GALLERY, "Key": key, "VersionId": obj["version"], "ETag": obj["etag"]}
    errors = [m for m in emitted_metrics(capsys) if "Errors" in m]
    assert [m["Kind"] for m in errors] == [code]


def test_a_key_outside_the_convention_is_an_error_not_a_guess(app, aws):  # noqa: F811
    obj = put_object(aws["s3"], GALLERY, "uploads/alice.jpg", jpeg_bytes())
    assert run(app, s3_sqs_event(PUT, [obj])) == {"batchItemFailures": []}
    doc = report(aws, "uploads/alice.jpg")
    assert doc["Error"]["Code"] == "InvalidParameterException"
    assert "outside the convention collections/<collection-id>/<external-image-id>/<file>" in doc["Error"]["Message"]


def test_an_unknown_collection_is_reported_never_created(app, aws):  # noqa: F811
    obj = put_object(aws["s3"], GALLERY, "collections/nobody/alice/a.jpg", jpeg_bytes())
    run(app, s3_sqs_event(PUT, [obj]))
    assert report(aws, "collections/nobody/alice/a.jpg")["Error"]["Code"] == "ResourceNotFoundException"
    assert app.runtime.service.list_collections()["CollectionIds"] == ["staff"]


def test_object_metadata_names_the_collection_when_the_key_does_not(app, aws):  # noqa: F811
    meta = {"collection-id": "staff", "external-image-id": "bob"}
    obj = put_object(aws["s3"], GALLERY, "inbox/scan 7.jpg", b"not an image", Metadata=meta)
    run(app, s3_sqs_event(PUT, [obj]))
    doc = report(aws, "inbox/scan 7.jpg")  # the key arrived URL-encoded ("scan+7.jpg") and was decoded
    assert (doc["CollectionId"], doc["ExternalImageId"]) == ("staff", "bob")
    assert doc["Error"]["Code"] == "InvalidImageFormatException"  # reached the image: routing worked


def test_redelivery_of_the_same_version_writes_no_second_report_but_a_new_version_is_processed(app, aws):  # noqa: F811
    key = "collections/staff/alice/a.jpg"
    first = put_object(aws["s3"], GALLERY, key, b"garbage v1")
    event = s3_sqs_event(PUT, [first])
    run(app, event)
    run(app, event)  # SQS at-least-once: the same message again
    assert versions(aws["s3"], RESULTS, f"reports/{key}.json") == 1
    second = put_object(aws["s3"], GALLERY, key, b"garbage v2")
    run(app, s3_sqs_event(PUT, [second]))
    assert versions(aws["s3"], RESULTS, f"reports/{key}.json") == 2
    assert report(aws, key)["Object"]["VersionId"] == second["version"]


def test_an_unversioned_object_is_keyed_by_its_etag(app, aws):  # noqa: F811
    key = "collections/staff/carol/c.jpg"
    obj = put_object(aws["s3"], GALLERY, key, b"garbage")
    event = s3_sqs_event(PUT, [{**obj, "version": None}])
    run(app, event)
    run(app, event)
    assert versions(aws["s3"], RESULTS, f"reports/{key}.json") == 1
    items = aws["ddb"].scan(TableName="facesearch-idempotency")["Items"]
    assert len(items) == 1 and items[0]["status"]["S"] == "COMPLETED"


def _faces(app, external: str, n: int) -> list[FaceRecord]:
    rng = np.random.default_rng(len(external))
    records = []
    for _ in range(n):
        v = rng.normal(size=128).astype(np.float32)
        records.append(
            FaceRecord(
                face_id=str(uuid.uuid4()),
                image_id=str(uuid.uuid4()),
                vector=v / np.linalg.norm(v) * 0.5,
                bounding_box={"Width": 0.5, "Height": 0.5, "Left": 0.1, "Top": 0.1},
                confidence=0.99,
                indexed_at=datetime.now(UTC),
                external_image_id=external,
            )
        )
    app.runtime.service.store.add_faces("staff", records)
    return records


def _indexed_report(aws, key: str, faces: list[FaceRecord]) -> None:  # noqa: F811
    doc = {
        "Status": "INDEXED",
        "CollectionId": "staff",
        "ExternalImageId": faces[0].external_image_id,
        "FaceRecords": [{"Face": {"FaceId": f.face_id}} for f in faces],
    }
    aws["s3"].put_object(Bucket=RESULTS, Key=f"reports/{key}.json", Body=json.dumps(doc).encode())


def test_object_removed_deletes_that_images_faces_even_those_of_a_user_and_no_others(app, aws):  # noqa: F811
    removed, kept = _faces(app, "alice", 2), _faces(app, "alice", 1)  # two files of alice; one is removed
    service = app.runtime.service
    service.create_user(CollectionId="staff", UserId="alice")
    service.associate_faces(CollectionId="staff", UserId="alice", FaceIds=[removed[0].face_id])
    _indexed_report(aws, "collections/staff/alice/one.jpg", removed)
    event = s3_sqs_event(DELETE, [{"key": "collections/staff/alice/one.jpg"}])
    assert run(app, event) == {"batchItemFailures": []}
    left = {f["FaceId"] for f in service.list_faces(CollectionId="staff")["Faces"]}
    assert left == {kept[0].face_id}
    doc = report(aws, "collections/staff/alice/one.jpg")
    assert doc["Status"] == "REMOVED" and sorted(doc["DeletedFaces"]) == sorted(f.face_id for f in removed)
    assert run(app, event) == {"batchItemFailures": []}  # a re-delivered removal is harmless
    assert {f["FaceId"] for f in service.list_faces(CollectionId="staff")["Faces"]} == {kept[0].face_id}


def test_removing_an_object_that_was_never_indexed_deletes_nothing(app, aws):  # noqa: F811
    kept = _faces(app, "dave", 1)
    run(app, s3_sqs_event(DELETE, [{"key": "collections/staff/dave/never.jpg"}]))
    assert report(aws, "collections/staff/dave/never.jpg")["DeletedFaces"] == []
    assert [f["FaceId"] for f in app.runtime.service.list_faces(CollectionId="staff")["Faces"]] == [kept[0].face_id]


def test_one_malformed_message_in_ten_fails_alone(app, aws):  # noqa: F811
    objects = []
    for n in range(9):
        key = f"collections/staff/p{n}/photo.jpg"
        _indexed_report(aws, key, _faces(app, f"p{n}", 1))
        objects.append({"key": key})
    objects.insert(4, {"body": '{"Records": "not a list'})
    result = run(app, s3_sqs_event(DELETE, objects))
    assert result == {"batchItemFailures": [{"itemIdentifier": str(uuid.UUID(int=4))}]}
    assert app.runtime.service.list_faces(CollectionId="staff")["Faces"] == []
    assert all(report(aws, f"collections/staff/p{n}/photo.jpg")["Status"] == "REMOVED" for n in range(9))


@pytest.mark.parametrize("body", ["", "{}", "[1, 2]", '{"Records": [{"eventName": "ObjectCreated:Put"}]}'])
def test_a_body_that_is_no_s3_notification_is_failed_for_the_dead_letter_queue(app, capsys, body):
    with pytest.raises(BatchProcessingError, match="All records failed"):  # Powertools: the batch is retried
        run(app, s3_sqs_event(PUT, [{"body": body}]))
    assert [m["Kind"] for m in emitted_metrics(capsys) if "Errors" in m] == ["MalformedMessage"]


def test_an_unreachable_s3_is_transient_so_sqs_retries_and_the_retry_can_succeed(app, aws):  # noqa: F811
    import boto3

    key = "collections/staff/erin/e.jpg"
    event = s3_sqs_event(PUT, [put_object(aws["s3"], GALLERY, key, b"garbage")])
    real = app.indexer.s3
    app.indexer.s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9", config=_no_retries())
    with pytest.raises(BatchProcessingError):
        run(app, event)
    assert versions(aws["s3"], RESULTS, f"reports/{key}.json") == 0
    app.indexer.s3 = real  # the redelivery finds no completed idempotency record: it runs
    assert run(app, event) == {"batchItemFailures": []}
    assert report(aws, key)["Error"]["Code"] == "InvalidImageFormatException"


def test_an_unreachable_vector_store_is_transient(aws, monkeypatch):  # noqa: F811
    monkeypatch.setenv("FACESEARCH_BACKEND", "opensearch")
    monkeypatch.setenv("FACESEARCH_OPENSEARCH_URL", "http://127.0.0.1:9")
    app = load_function("index_faces")
    app.runtime.service.engine = DecodeOnlyEngine()
    # Not an image: had the store answered, this would be a permanent error with a report, not a retry.
    event = s3_sqs_event(PUT, [put_object(aws["s3"], GALLERY, "collections/staff/f/f.jpg", b"garbage")])
    with pytest.raises(BatchProcessingError):
        run(app, event)
    assert versions(aws["s3"], RESULTS, "reports/collections/staff/f/f.jpg.json") == 0


def test_a_missing_setting_fails_the_cold_start_by_name(aws, monkeypatch):  # noqa: F811
    monkeypatch.delenv("FACESEARCH_IDEMPOTENCY_TABLE")
    with pytest.raises(SettingsError, match="FACESEARCH_IDEMPOTENCY_TABLE"):
        load_function("index_faces")


def _no_retries():
    from botocore.config import Config

    return Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1)
