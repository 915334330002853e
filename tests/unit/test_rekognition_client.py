"""facesearch.client.rekognition_client: a stock boto3 client that signs for execute-api and keeps our extension
fields. The client talks to the real protocol adapter in-process: a botocore ``before-send`` handler hands the
signed request to ``RekognitionProtocol`` and returns its bytes as the HTTP response (no server, no model)."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime

import numpy as np
import pytest
from botocore.awsrequest import AWSResponse
from urllib3.response import HTTPResponse

from facesearch.audit import MemoryAuditSink
from facesearch.aws.protocol import RekognitionProtocol
from facesearch.client import rekognition_client
from facesearch.engine.similarity import DEFAULT_THRESHOLD
from facesearch.settings import load_settings
from facesearch.store.records import FaceRecord
from facesearch.wiring import build_service


class InProcess:
    """Answers a botocore client's requests with the protocol adapter; keeps the requests it saw."""

    def __init__(self, protocol: RekognitionProtocol) -> None:
        self.protocol = protocol
        self.requests: list = []

    def __call__(self, request, **_):
        self.requests.append(request)
        headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        body = request.body.read() if hasattr(request.body, "read") else request.body
        response = self.protocol.handle(
            target=headers.get("x-amz-target"),
            content_type=headers.get("content-type"),
            body=body.encode() if isinstance(body, str) else body,
        )
        raw = HTTPResponse(body=io.BytesIO(response.body), status=response.status, preload_content=False)
        return AWSResponse(request.url, response.status, response.headers, raw)


@pytest.fixture
def service(tmp_path):
    return build_service(load_settings(home=tmp_path), engine=object(), audit=MemoryAuditSink())


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


def client_for(service, **kwargs):
    transport = InProcess(RekognitionProtocol(service))
    client = rekognition_client("https://abc123.execute-api.eu-west-1.amazonaws.com/prod", region="eu-west-1", **kwargs)
    client.meta.events.register("before-send.rekognition", transport)
    return client, transport


def test_it_signs_for_execute_api_so_api_gateway_iam_auth_accepts_it(service):
    client, transport = client_for(service)
    client.list_collections()
    authorization = transport.requests[-1].headers["Authorization"]
    authorization = authorization.decode() if isinstance(authorization, bytes) else authorization
    assert "/eu-west-1/execute-api/aws4_request" in authorization


def test_signing_name_none_keeps_rekognitions_scope(service):
    client, transport = client_for(service, signing_name=None)
    client.list_collections()
    authorization = transport.requests[-1].headers["Authorization"]
    authorization = authorization.decode() if isinstance(authorization, bytes) else authorization
    assert "/eu-west-1/rekognition/aws4_request" in authorization


def _faces(service, n):
    rng = np.random.default_rng(3)
    base = rng.normal(size=128).astype(np.float32)
    ids = []
    for i in range(n):
        v = base + rng.normal(scale=0.01, size=128).astype(np.float32)
        fid = str(uuid.UUID(int=i + 10))
        ids.append(fid)
        service.store.add_faces(
            "staff",
            [
                FaceRecord(
                    fid,
                    str(uuid.uuid4()),
                    v / np.linalg.norm(v) * 0.4,
                    {"Width": 0.5, "Height": 0.5, "Left": 0.1, "Top": 0.1},
                    0.99,
                    datetime.now(UTC),
                    external_image_id=f"p{i}",
                    source="s3://gallery/collections/staff/p/a.jpg",
                )
            ],
        )
    return ids


def test_the_review_flag_and_match_explanation_reach_the_caller(service):
    client, _ = client_for(service)
    client.create_collection(CollectionId="staff")
    ids = _faces(service, 2)
    match = client.search_faces(CollectionId="staff", FaceId=ids[0])["FaceMatches"][0]
    assert match["ReviewRequired"] is True
    assert match["MatchExplanation"]["Source"] == "s3://gallery/collections/staff/p/a.jpg"
    assert match["Face"]["FaceId"] == ids[1] and isinstance(match["Similarity"], float)
    described = client.describe_collection(CollectionId="staff")
    assert described["FaceMatchThresholdFloor"] == DEFAULT_THRESHOLD and described["ReviewRequired"] is True
    assert isinstance(described["CreationTimestamp"], datetime)  # parsed fields keep botocore's types


def test_a_stock_client_without_the_hook_drops_the_extensions(service):
    client, _ = client_for(service, expose_extensions=False)
    client.create_collection(CollectionId="staff")
    ids = _faces(service, 2)
    match = client.search_faces(CollectionId="staff", FaceId=ids[0])["FaceMatches"][0]
    assert "ReviewRequired" not in match and "MatchExplanation" not in match


@pytest.mark.parametrize(
    ("call", "exception"),
    [
        (lambda c: c.describe_collection(CollectionId="nope"), "ResourceNotFoundException"),
        (lambda c: c.create_collection(CollectionId="staff"), "ResourceAlreadyExistsException"),
        (lambda c: c.list_faces(CollectionId="staff", NextToken="forged"), "InvalidPaginationTokenException"),
        (
            lambda c: (
                c.create_user(CollectionId="staff", UserId="u") and c.create_user(CollectionId="staff", UserId="u")
            ),
            "ConflictException",
        ),
    ],
    ids=["not-found", "exists", "token", "conflict"],
)
def test_errors_arrive_as_botocores_modelled_exceptions(service, call, exception):
    client, _ = client_for(service)
    client.create_collection(CollectionId="staff")
    with pytest.raises(getattr(client.exceptions, exception)) as caught:
        call(client)
    assert caught.value.response["Error"]["Code"] == exception
    assert caught.value.response["ResponseMetadata"]["RequestId"]
