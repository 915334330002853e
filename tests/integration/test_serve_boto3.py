"""A stock boto3 ``rekognition`` client, over HTTP, against ``facesearch serve`` (a subprocess on a free loopback
port, the real engine, the embedded store); S3Object images come from moto's S3 server on another free port.

Every response is also checked against botocore's own Rekognition model: each field we send is either in the
documented output shape or one of our named extensions.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from facesearch.client import rekognition_client

EXTENSIONS = {
    "ReviewRequired",
    "MatchExplanation",
    "FaceMatchThresholdFloor",
    "FaceSizePixels",
    "SearchedFaces",
    # the threshold a search applied (it may be the budgeted default) and the collection's risk (docs/similarity.md)
    "FaceMatchThreshold",
    "UserMatchThreshold",
    "DefaultFaceMatchThreshold",
    "FalseCandidateBudget",
    "RefusesThresholdsOverBudget",
    "FalseMatchRisk",
}
ENV = {"AWS_ACCESS_KEY_ID": "AKIDSERVETEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_s3():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def endpoint(moto_s3, tmp_path_factory):
    port = free_port()
    home = tmp_path_factory.mktemp("serve-home")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FACESEARCH_"))},
        **ENV,
        "AWS_ENDPOINT_URL_S3": moto_s3,
        "FACESEARCH_HOME": str(home),
    }
    log = (home / "serve.log").open("w")
    cli = [sys.executable, "-m", "facesearch.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(cli, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"facesearch serve exited: {(home / 'serve.log').read_text()}")
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("facesearch serve did not listen within 60 s")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=20)
    log.close()


@pytest.fixture(scope="module")
def stock(endpoint):
    """The unmodified boto3 client, with raw bodies kept aside so the shapes can be checked."""
    client = boto3.client("rekognition", endpoint_url=endpoint, region_name="us-east-1", **_credentials())
    client.raw = {}

    def keep(http_response, model, **_):
        client.raw[model.name] = json.loads(http_response.content or b"{}")

    client.meta.events.register("after-call.rekognition", keep)
    return client


def _credentials() -> dict[str, str]:
    return {"aws_access_key_id": ENV["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": ENV["AWS_SECRET_ACCESS_KEY"]}


def undocumented(shape, value, path="") -> list[str]:
    """Paths of fields in ``value`` that botocore's model ``shape`` does not define."""
    out = []
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, item in value.items():
            if key not in shape.members:
                out.append(f"{path}.{key}")
            else:
                out += undocumented(shape.members[key], item, f"{path}.{key}")
    elif shape.type_name == "list" and isinstance(value, list):
        for n, item in enumerate(value):
            out += undocumented(shape.member, item, f"{path}[{n}]")
    return out


def check_shape(client, operation: str) -> None:
    shape = client.meta.service_model.operation_model(operation).output_shape
    extra = undocumented(shape, client.raw[operation])
    assert {p.rsplit(".", 1)[-1] for p in extra} <= EXTENSIONS, extra


def photo(faces_dev: Path, name: str) -> bytes:
    return (faces_dev / "images" / name).read_bytes()


def test_the_rekognition_flow_over_http(stock, endpoint, moto_s3, faces_dev):
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1", **_credentials())
    s3.create_bucket(Bucket="gallery")
    s3.put_object(Bucket="gallery", Key="people/img2.jpg", Body=photo(faces_dev, "img2.jpg"))
    rek = stock

    created = rek.create_collection(CollectionId="people")
    assert created["StatusCode"] == 200 and created["CollectionArn"].endswith(":collection/people")
    by_bytes = rek.index_faces(
        CollectionId="people", Image={"Bytes": photo(faces_dev, "img1.jpg")}, ExternalImageId="p1a"
    )
    by_s3 = rek.index_faces(
        CollectionId="people",
        Image={"S3Object": {"Bucket": "gallery", "Name": "people/img2.jpg"}},
        ExternalImageId="p1b",
    )
    other = rek.index_faces(CollectionId="people", Image={"Bytes": photo(faces_dev, "img29.jpg")}, ExternalImageId="p7")
    check_shape(rek, "IndexFaces")
    face_a = by_bytes["FaceRecords"][0]["Face"]["FaceId"]
    face_b = by_s3["FaceRecords"][0]["Face"]["FaceId"]
    face_other = other["FaceRecords"][0]["Face"]["FaceId"]
    assert by_bytes["FaceRecords"][0]["FaceDetail"]["BoundingBox"]["Width"] > 0

    listed = rek.list_faces(CollectionId="people")
    check_shape(rek, "ListFaces")
    assert {f["FaceId"] for f in listed["Faces"]} == {face_a, face_b, face_other}

    searched = rek.search_faces(CollectionId="people", FaceId=face_a, FaceMatchThreshold=90)
    check_shape(rek, "SearchFaces")
    assert [m["Face"]["FaceId"] for m in searched["FaceMatches"]] == [face_b]
    assert "ReviewRequired" not in searched["FaceMatches"][0]  # a stock client's parser drops our extensions
    assert rek.raw["SearchFaces"]["FaceMatches"][0]["ReviewRequired"] is True  # … but they were on the wire

    by_image = rek.search_faces_by_image(CollectionId="people", Image={"Bytes": photo(faces_dev, "img4.jpg")})
    check_shape(rek, "SearchFacesByImage")
    assert {m["Face"]["ExternalImageId"] for m in by_image["FaceMatches"]} == {"p1a", "p1b"}
    assert 0 < by_image["SearchedFaceConfidence"] <= 100

    compared = rek.compare_faces(
        SourceImage={"Bytes": photo(faces_dev, "img4.jpg")},
        TargetImage={"S3Object": {"Bucket": "gallery", "Name": "people/img2.jpg"}},
        SimilarityThreshold=90,
    )
    check_shape(rek, "CompareFaces")
    assert compared["FaceMatches"] and compared["FaceMatches"][0]["Similarity"] >= 90

    rek.create_user(CollectionId="people", UserId="person01")
    associated = rek.associate_faces(CollectionId="people", UserId="person01", FaceIds=[face_a, face_b])
    check_shape(rek, "AssociateFaces")
    assert {f["FaceId"] for f in associated["AssociatedFaces"]} == {face_a, face_b}
    users = rek.search_users_by_image(CollectionId="people", Image={"Bytes": photo(faces_dev, "img5.jpg")})
    check_shape(rek, "SearchUsersByImage")
    assert users["UserMatches"][0]["User"]["UserId"] == "person01"

    for call, operation in (
        (lambda: rek.describe_collection(CollectionId="people"), "DescribeCollection"),
        (lambda: rek.list_collections(), "ListCollections"),
        (lambda: rek.list_users(CollectionId="people"), "ListUsers"),
        (lambda: rek.search_users(CollectionId="people", FaceId=face_other, UserMatchThreshold=90), "SearchUsers"),
        (lambda: rek.detect_faces(Image={"Bytes": photo(faces_dev, "img4.jpg")}, Attributes=["ALL"]), "DetectFaces"),
        (lambda: rek.create_user(CollectionId="people", UserId="temp"), "CreateUser"),
        (lambda: rek.delete_user(CollectionId="people", UserId="temp"), "DeleteUser"),
    ):
        call()
        check_shape(rek, operation)
    assert rek.raw["DescribeCollection"]["FaceMatchThresholdFloor"] == 90.0  # an extension, on the wire only
    assert rek.raw["DetectFaces"]["FaceDetails"][0]["FaceSizePixels"] > 0

    deleted = rek.delete_faces(CollectionId="people", FaceIds=[face_other, face_a])
    check_shape(rek, "DeleteFaces")
    assert deleted["DeletedFaces"] == [face_other]
    assert deleted["UnsuccessfulFaceDeletions"][0]["Reasons"] == ["ASSOCIATED_TO_AN_EXISTING_USER"]
    assert rek.delete_collection(CollectionId="people")["StatusCode"] == 200
    assert rek.list_collections()["CollectionIds"] == []


def test_the_helper_client_sees_the_review_flag_over_http(endpoint, faces_dev):
    rek = rekognition_client(endpoint, **_credentials())
    rek.create_collection(CollectionId="reviewed")
    rek.index_faces(CollectionId="reviewed", Image={"Bytes": photo(faces_dev, "img1.jpg")}, ExternalImageId="a")
    match = rek.search_faces_by_image(CollectionId="reviewed", Image={"Bytes": photo(faces_dev, "img2.jpg")})
    assert match["FaceMatches"][0]["ReviewRequired"] is True
    assert (
        match["FaceMatches"][0]["MatchExplanation"]["Distance"]
        < match["FaceMatches"][0]["MatchExplanation"]["MaxDistance"]
    )
    rek.delete_collection(CollectionId="reviewed")


def _code(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return type(caught.value).__name__, caught.value.response["Error"]["Code"]


def test_errors_arrive_as_botocore_exceptions(stock, endpoint, faces_dev):
    rek = stock
    rek.create_collection(CollectionId="errors")
    face = rek.index_faces(CollectionId="errors", Image={"Bytes": photo(faces_dev, "img1.jpg")})["FaceRecords"][0]
    face_id = face["Face"]["FaceId"]
    cases = {
        "missing collection": lambda: rek.describe_collection(CollectionId="nope"),
        "existing collection": lambda: rek.create_collection(CollectionId="errors"),
        "below the floor": lambda: rek.search_faces(CollectionId="errors", FaceId=face_id, FaceMatchThreshold=40),
        "not an image": lambda: rek.detect_faces(Image={"Bytes": b"definitely not a jpeg"}),
        "no such S3 object": lambda: rek.index_faces(
            CollectionId="errors", Image={"S3Object": {"Bucket": "gallery", "Name": "missing.jpg"}}
        ),
        "too large": lambda: rek.detect_faces(Image={"Bytes": b"\xff\xd8" + b"\0" * (5 * 1024 * 1024)}),
        "unknown operation": lambda: rek.detect_labels(Image={"Bytes": photo(faces_dev, "img1.jpg")}),
    }
    got = {name: _code(call) for name, call in cases.items()}
    assert got == {
        "missing collection": ("ResourceNotFoundException", "ResourceNotFoundException"),
        "existing collection": ("ResourceAlreadyExistsException", "ResourceAlreadyExistsException"),
        "below the floor": ("InvalidParameterException", "InvalidParameterException"),
        "not an image": ("InvalidImageFormatException", "InvalidImageFormatException"),
        "no such S3 object": ("InvalidS3ObjectException", "InvalidS3ObjectException"),
        "too large": ("ImageTooLargeException", "ImageTooLargeException"),
        "unknown operation": ("ClientError", "UnknownOperationException"),
    }
    wrong_scope = rekognition_client(endpoint, signing_name="s3", **_credentials())
    assert _code(lambda: wrong_scope.list_collections()) == ("ClientError", "InvalidSignatureException")
    rek.delete_collection(CollectionId="errors")
