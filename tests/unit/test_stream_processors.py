"""Stream processors over the Rekognition JSON API: the six operations with Rekognition's request and response
shapes (checked against botocore's own rekognition service model), the collection floor, one processor per
frames stream, every change audited; on both registries (a JSON file under FACESEARCH_HOME, the DynamoDB state
table in moto)."""

from __future__ import annotations

import json

import botocore.session
import pytest
from video_harness import FRAMES_ARN, OUTPUT_ARN, REGION, STATE, processor_request

from facesearch.audit import MemoryAuditSink
from facesearch.aws.protocol import RekognitionProtocol
from facesearch.errors import InvalidParameterException
from facesearch.settings import load_settings
from facesearch.wiring import build_processors, build_service

MODEL = botocore.session.get_session().get_service_model("rekognition")


@pytest.fixture(params=["file", "dynamodb"])
def api(request, tmp_path, monkeypatch):
    audit = MemoryAuditSink()
    if request.param == "file":
        settings = load_settings(backend="embedded", home=tmp_path)
        service = build_service(settings, audit=audit)
        yield RekognitionProtocol(service, processors=build_processors(settings, service)), audit
        return
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        import boto3

        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName=STATE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        settings = load_settings(backend="embedded", home=tmp_path, state_table=STATE)
        service = build_service(settings, audit=audit)
        yield RekognitionProtocol(service, processors=build_processors(settings, service, dynamodb=ddb)), audit


def call(api, operation: str, **body):
    protocol, _ = api
    response = protocol.handle(
        target=f"RekognitionService.{operation}",
        content_type="application/x-amz-json-1.1",
        body=json.dumps(body).encode(),
        caller="arn:aws:iam::123456789012:user/operator",
    )
    return response.status, json.loads(response.body)


def assert_output_shape(operation: str, document: dict) -> None:
    """Every field we answer is a member of Rekognition's output shape for the operation (botocore's model)."""
    members = MODEL.operation_model(operation).output_shape.members
    assert set(document) <= set(members), set(document) - set(members)


def test_the_life_of_a_stream_processor(api):
    assert call(api, "CreateCollection", CollectionId="watchlist")[0] == 200
    status, created = call(api, "CreateStreamProcessor", **processor_request(threshold=90))
    assert status == 200, created
    assert_output_shape("CreateStreamProcessor", created)
    assert created["StreamProcessorArn"].endswith(":streamprocessor/cam-watch")

    status, described = call(api, "DescribeStreamProcessor", Name="cam-watch")
    assert status == 200
    assert_output_shape("DescribeStreamProcessor", described)
    assert described["Status"] == "STOPPED"
    assert described["Input"] == {"KinesisVideoStream": {"Arn": FRAMES_ARN}}
    assert described["Output"] == {"KinesisDataStream": {"Arn": OUTPUT_ARN}}
    assert described["Settings"] == {"FaceSearch": {"CollectionId": "watchlist", "FaceMatchThreshold": 90.0}}
    assert isinstance(described["CreationTimestamp"], int | float)  # epoch seconds, as botocore parses them

    assert call(api, "StartStreamProcessor", Name="cam-watch") == (200, {})
    assert call(api, "DescribeStreamProcessor", Name="cam-watch")[1]["Status"] == "RUNNING"
    status, listed = call(api, "ListStreamProcessors")
    assert_output_shape("ListStreamProcessors", listed)
    assert listed == {"StreamProcessors": [{"Name": "cam-watch", "Status": "RUNNING"}]}

    status, refused = call(api, "DeleteStreamProcessor", Name="cam-watch")
    assert (status, refused["__type"]) == (400, "ResourceInUseException")
    assert call(api, "StopStreamProcessor", Name="cam-watch") == (200, {})
    assert call(api, "DeleteStreamProcessor", Name="cam-watch") == (200, {})
    status, missing = call(api, "DescribeStreamProcessor", Name="cam-watch")
    assert (status, missing["__type"]) == (400, "ResourceNotFoundException")

    _, audit = api
    changes = [(r.operation, r.phase) for r in audit.records if "StreamProcessor" in r.operation]
    assert changes == [
        (op, phase)
        for op in ("CreateStreamProcessor", "StartStreamProcessor", "StopStreamProcessor", "DeleteStreamProcessor")
        for phase in ("intent", "outcome")
    ]
    assert {r.caller for r in audit.records if "StreamProcessor" in r.operation} == {
        "arn:aws:iam::123456789012:user/operator"
    }
    assert all(r.collection_id == "watchlist" for r in audit.records if "StreamProcessor" in r.operation)


def test_the_threshold_is_held_to_the_collections_floor(api):
    call(api, "CreateCollection", CollectionId="watchlist", FaceMatchThresholdFloor=95)
    status, refused = call(api, "CreateStreamProcessor", **processor_request(threshold=90))
    assert (status, refused["__type"]) == (400, "InvalidParameterException")
    assert "floor of 95" in refused["message"]
    status, _ = call(api, "CreateStreamProcessor", **processor_request())  # no threshold: the floor applies
    assert status == 200
    described = call(api, "DescribeStreamProcessor", Name="cam-watch")[1]
    assert described["Settings"]["FaceSearch"]["FaceMatchThreshold"] == 95.0


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"Name": "bad name!"}, "InvalidParameterException"),
        ({"Input": {"KinesisVideoStream": {"Arn": "not-an-arn"}}}, "InvalidParameterException"),
        ({"Output": {}}, "InvalidParameterException"),
        ({"Settings": {"FaceSearch": {"CollectionId": "nobody"}}}, "ResourceNotFoundException"),
        (
            {"Settings": {"FaceSearch": {"CollectionId": "watchlist", "FaceMatchThreshold": 101}}},
            "InvalidParameterException",
        ),
        ({"Settings": {}}, "InvalidParameterException"),
        ({"RoleArn": None}, "InvalidParameterException"),
        ({"NotificationChannel": {"SNSTopicArn": "arn:aws:sns:us-east-1:123456789012:t"}}, "InvalidParameterException"),
    ],
    ids=[
        "name",
        "input-arn",
        "no-output",
        "unknown-collection",
        "threshold-range",
        "no-face-search",
        "no-role",
        "unsupported-field",
    ],
)
def test_a_bad_create_request_gets_a_rekognition_error_and_creates_nothing(api, change, error):
    call(api, "CreateCollection", CollectionId="watchlist")
    request = {**processor_request(), **change}
    request = {k: v for k, v in request.items() if v is not None}
    status, refused = call(api, "CreateStreamProcessor", **request)
    assert (status, refused["__type"]) == (400, error)
    assert call(api, "ListStreamProcessors")[1] == {"StreamProcessors": []}


def test_one_processor_per_frames_stream_and_names_are_unique(api):
    call(api, "CreateCollection", CollectionId="watchlist")
    assert call(api, "CreateStreamProcessor", **processor_request())[0] == 200
    status, same_name = call(api, "CreateStreamProcessor", **processor_request())
    assert (status, same_name["__type"]) == (400, "ResourceInUseException")
    status, same_stream = call(api, "CreateStreamProcessor", **{**processor_request(), "Name": "other"})
    assert (status, same_stream["__type"]) == (400, "ResourceInUseException")


def test_list_pages_with_next_token(api):
    call(api, "CreateCollection", CollectionId="watchlist")
    for n in range(3):
        request = processor_request()
        request["Name"] = f"p{n}"
        request["Input"] = {"KinesisVideoStream": {"Arn": f"{FRAMES_ARN}-{n}"}}
        assert call(api, "CreateStreamProcessor", **request)[0] == 200
    first = call(api, "ListStreamProcessors", MaxResults=2)[1]
    assert [p["Name"] for p in first["StreamProcessors"]] == ["p0", "p1"]
    second = call(api, "ListStreamProcessors", MaxResults=2, NextToken=first["NextToken"])[1]
    assert second == {"StreamProcessors": [{"Name": "p2", "Status": "STOPPED"}]}


def test_the_consumer_finds_the_processor_by_stream_or_consumer_arn(api):
    protocol, _ = api
    call(api, "CreateCollection", CollectionId="watchlist")
    call(api, "CreateStreamProcessor", **processor_request())
    processors = protocol._methods["CreateStreamProcessor"].__self__
    assert processors.for_stream(FRAMES_ARN)["Name"] == "cam-watch"
    assert processors.for_stream(f"{FRAMES_ARN}/consumer/match-frames:1764504000")["Name"] == "cam-watch"
    assert processors.for_stream(OUTPUT_ARN) is None


def test_start_checks_the_collection_again(api):
    call(api, "CreateCollection", CollectionId="watchlist")
    assert call(api, "CreateStreamProcessor", **processor_request(threshold=92))[0] == 200
    assert call(api, "UpdateCollection", CollectionId="watchlist", FaceMatchThresholdFloor=95)[0] == 200
    status, refused = call(api, "StartStreamProcessor", Name="cam-watch")
    assert (status, refused["__type"]) == (400, "InvalidParameterException")
    assert call(api, "DescribeStreamProcessor", Name="cam-watch")[1]["Status"] == "STOPPED"


def test_a_stock_boto3_rekognition_client_drives_the_processor_operations(tmp_path, monkeypatch):
    """botocore serialises the requests and parses our answers (timestamps included) with Rekognition's model."""
    import boto3
    from test_rekognition_client import InProcess

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    settings = load_settings(backend="embedded", home=tmp_path)
    service = build_service(settings, audit=MemoryAuditSink())
    client = boto3.client("rekognition", region_name="eu-west-1", endpoint_url="https://facesearch.invalid")
    client.meta.events.register(
        "before-send.rekognition",
        InProcess(RekognitionProtocol(service, processors=build_processors(settings, service))),
    )
    client.create_collection(CollectionId="watchlist")
    arn = client.create_stream_processor(**processor_request())["StreamProcessorArn"]
    client.start_stream_processor(Name="cam-watch")
    described = client.describe_stream_processor(Name="cam-watch")
    assert described["StreamProcessorArn"] == arn and described["Status"] == "RUNNING"
    assert described["CreationTimestamp"].tzinfo is not None  # parsed as a timestamp by botocore
    assert client.list_stream_processors()["StreamProcessors"] == [{"Name": "cam-watch", "Status": "RUNNING"}]
    with pytest.raises(client.exceptions.ResourceInUseException):
        client.delete_stream_processor(Name="cam-watch")
    client.stop_stream_processor(Name="cam-watch")
    client.delete_stream_processor(Name="cam-watch")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_stream_processor(Name="cam-watch")


def test_a_deployment_takes_processors_on_its_own_streams_only(tmp_path):
    settings = load_settings(
        backend="embedded", home=tmp_path, frames_stream="facesearch-frames", results_stream="elsewhere"
    )
    service = build_service(settings, audit=MemoryAuditSink())
    processors = build_processors(settings, service)
    service.create_collection(CollectionId="watchlist")
    with pytest.raises(InvalidParameterException, match="Output must be this deployment's stream elsewhere"):
        processors.create_stream_processor(**processor_request())
    request = processor_request()
    request["Input"] = {"KinesisVideoStream": {"Arn": FRAMES_ARN + "-2"}}
    with pytest.raises(InvalidParameterException, match="Input must be"):
        processors.create_stream_processor(**request)
