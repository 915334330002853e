"""The Lambda handlers with the real engine on real photos (faces-dev), AWS through moto in-process."""

from __future__ import annotations

import io
import json

import pytest
from functions_harness import (  # noqa: F401  (aws is a fixture)
    GALLERY,
    QUERIES,
    RESULTS,
    TABLE,
    aws,
    lambda_context,
    load_function,
    put_object,
    read_json,
    s3_sqs_event,
    sample,
    tapped_events,
    versions,
)
from PIL import Image

PUT = "sqs_s3_gallery_put.json"


def _photo(faces_dev, name: str) -> bytes:
    return (faces_dev / "images" / name).read_bytes()


def _blank() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (120, 130, 140)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def index_app(aws, engine):  # noqa: F811
    module = load_function("index_faces")
    module.runtime.service.engine = engine
    module.runtime.service.create_collection(CollectionId="staff")
    return module


def faces(app) -> list[dict]:
    return app.runtime.service.list_faces(CollectionId="staff")["Faces"]


def run(app, event):
    return app.handler(event, lambda_context())


def test_an_upload_is_indexed_once_however_often_it_is_delivered(index_app, aws, faces_dev):  # noqa: F811
    key = "collections/staff/person01/img 2.jpg"
    event = s3_sqs_event(PUT, [put_object(aws["s3"], GALLERY, key, _photo(faces_dev, "img2.jpg"))])
    assert run(index_app, event) == {"batchItemFailures": []}
    report = read_json(aws["s3"], RESULTS, f"reports/{key}.json")
    assert report["Status"] == "INDEXED" and len(report["FaceRecords"]) >= 1
    assert report["FaceRecords"][0]["Face"]["ExternalImageId"] == "person01"
    assert report["Timing"]["IndexFacesMs"] > 0
    stored = faces(index_app)
    assert {f["FaceId"] for f in stored} == {r["Face"]["FaceId"] for r in report["FaceRecords"]}

    run(index_app, event)  # redelivery: the idempotency record answers, nothing runs
    assert versions(aws["s3"], RESULTS, f"reports/{key}.json") == 1 and faces(index_app) == stored

    aws["ddb"].delete_item(TableName=TABLE, Key={"id": aws["ddb"].scan(TableName=TABLE)["Items"][0]["id"]})
    run(index_app, event)  # a duplicate that slips past the idempotency record: same FaceIds, overwritten
    assert versions(aws["s3"], RESULTS, f"reports/{key}.json") == 2 and faces(index_app) == stored


def test_a_photo_with_no_face_is_reported(index_app, aws):  # noqa: F811
    key = "collections/staff/nobody/wall.jpg"
    run(index_app, s3_sqs_event(PUT, [put_object(aws["s3"], GALLERY, key, _blank())]))
    report = read_json(aws["s3"], RESULTS, f"reports/{key}.json")
    assert report["Status"] == "FAILED" and report["Error"]["Code"] == "NoFacesDetected"
    assert faces(index_app) == []


def test_nine_good_uploads_and_one_malformed_message(index_app, aws, faces_dev):  # noqa: F811
    names = ["img5.jpg", "img6.jpg", "img7.jpg", "img10.jpg", "img16.jpg", "img17.jpg", "img20.jpg", "img21.jpg"]
    names.append("img29.jpg")
    objects = [
        put_object(aws["s3"], GALLERY, f"collections/staff/p{n}/{name}", _photo(faces_dev, name))
        for n, name in enumerate(names)
    ]
    objects.insert(7, {"body": "not json at all"})
    result = run(index_app, s3_sqs_event(PUT, objects))
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == ["00000000-0000-0000-0000-000000000007"]
    reports = [
        read_json(aws["s3"], RESULTS, f"reports/collections/staff/p{n}/{name}.json") for n, name in enumerate(names)
    ]
    assert [r["Status"] for r in reports] == ["INDEXED"] * 9
    assert {f["ExternalImageId"] for f in faces(index_app)} == {f"p{n}" for n in range(9)}


def test_removing_an_indexed_upload_deletes_its_faces(index_app, aws, faces_dev):  # noqa: F811
    kept = put_object(aws["s3"], GALLERY, "collections/staff/person01/a.jpg", _photo(faces_dev, "img4.jpg"))
    gone = put_object(aws["s3"], GALLERY, "collections/staff/person01/b.jpg", _photo(faces_dev, "img5.jpg"))
    run(index_app, s3_sqs_event(PUT, [kept, gone]))
    before = {f["FaceId"] for f in faces(index_app)}
    aws["s3"].delete_object(Bucket=GALLERY, Key=gone["key"])
    run(index_app, s3_sqs_event("sqs_s3_gallery_delete_marker.json", [{"key": gone["key"]}]))
    removed = read_json(aws["s3"], RESULTS, f"reports/{gone['key']}.json")
    assert removed["Status"] == "REMOVED" and removed["DeletedFaces"]
    assert {f["FaceId"] for f in faces(index_app)} == before - set(removed["DeletedFaces"])
    assert all(f["ExternalImageId"] == "person01" for f in faces(index_app))


def test_a_query_upload_is_searched_stored_and_announced_once(aws, engine, faces_dev, monkeypatch):  # noqa: F811
    indexer = load_function("index_faces")
    indexer.runtime.service.engine = engine
    indexer.runtime.service.create_collection(CollectionId="staff")
    gallery = [
        put_object(aws["s3"], GALLERY, f"collections/staff/person01/{n}", _photo(faces_dev, n))
        for n in ("img1.jpg", "img2.jpg")
    ]
    run(indexer, s3_sqs_event(PUT, gallery))
    indexer.runtime.service.store.close()  # one embedded store, one process at a time (AWS: OpenSearch)
    searcher = load_function("search_faces")
    searcher.runtime.service.engine = engine
    query = put_object(aws["s3"], QUERIES, "staff/visitor.jpg", _photo(faces_dev, "img4.jpg"))
    event = s3_sqs_event("sqs_s3_query_put.json", [{**query, "version": None}])
    assert run(searcher, event) == {"batchItemFailures": []}
    result = read_json(aws["s3"], RESULTS, "results/staff/visitor.jpg.json")
    assert result["Status"] == "SEARCHED" and result["SearchedFaces"]
    matches = result["SearchedFaces"][0]["FaceMatches"]
    assert {m["Face"]["ExternalImageId"] for m in matches} == {"person01"}
    assert all(m["ReviewRequired"] for m in matches)
    events = tapped_events(aws["sqs"], aws["tap_url"])
    assert [e["detail-type"] for e in events] == ["FaceSearchCompleted"]
    detail = events[0]["detail"]
    assert detail["CollectionId"] == "staff" and detail["Object"] == {"Bucket": QUERIES, "Key": "staff/visitor.jpg"}
    assert detail["Result"] == {"Bucket": RESULTS, "Key": "results/staff/visitor.jpg.json"}
    assert {m["ExternalImageId"] for m in detail["Faces"][0]["Matches"]} == {"person01"}
    assert all(m["ReviewRequired"] is True and m["Similarity"] >= 80 for m in detail["Faces"][0]["Matches"])

    run(searcher, event)  # redelivered: no second search, no second event
    assert tapped_events(aws["sqs"], aws["tap_url"]) == []

    blank = put_object(aws["s3"], QUERIES, "staff/wall.jpg", _blank())
    run(searcher, s3_sqs_event("sqs_s3_query_put.json", [{**blank, "version": None}]))
    failed = read_json(aws["s3"], RESULTS, "results/staff/wall.jpg.json")
    assert failed["Status"] == "FAILED" and failed["Error"]["Code"] == "InvalidParameterException"
    assert "no faces" in failed["Error"]["Message"]
    assert tapped_events(aws["sqs"], aws["tap_url"]) == []


def test_the_api_sample_image_requests_run_on_real_photos(aws, engine, faces_dev):  # noqa: F811
    app = load_function("api")
    app.runtime.service.engine = engine
    aws["s3"].put_object(Bucket=GALLERY, Key="collections/staff/alice/portrait.jpg", Body=_photo(faces_dev, "img1.jpg"))
    aws["s3"].put_object(Bucket=QUERIES, Key="staff/visitor.jpg", Body=_photo(faces_dev, "img2.jpg"))
    statuses = {}
    for operation in ("CreateCollection", "IndexFaces", "SearchFacesByImage", "CompareFaces", "DetectFaces"):
        response = app.handler(sample(f"apigw/{operation}.json"), lambda_context())
        statuses[operation] = response["statusCode"]
        body = json.loads(response["body"])
        if operation == "SearchFacesByImage":
            assert body["FaceMatches"][0]["Face"]["ExternalImageId"] == "alice"
        if operation == "CompareFaces":
            assert body["FaceMatches"][0]["Similarity"] >= 90
    assert set(statuses.values()) == {200}, statuses
