"""The ASGI app behind ``facesearch serve``, called as uvicorn calls it (no socket, no model)."""

from __future__ import annotations

import asyncio
import json

import pytest

from facesearch.audit import MemoryAuditSink
from facesearch.aws.asgi import RekognitionAsgiApp
from facesearch.aws.protocol import RekognitionProtocol
from facesearch.cli import build_parser
from facesearch.settings import load_settings
from facesearch.wiring import build_service

SIGNED = "AWS4-HMAC-SHA256 Credential=AKIDLOCAL/20261130/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=00"


@pytest.fixture
def audit():
    return MemoryAuditSink()


@pytest.fixture
def app(tmp_path, audit):
    service = build_service(load_settings(home=tmp_path), engine=object(), audit=audit)
    return RekognitionAsgiApp(RekognitionProtocol(service, max_body_bytes=1000), workers=1)


def request(app, body: bytes | list[bytes], *, method="POST", path="/", target="CreateCollection", **headers):
    chunks = body if isinstance(body, list) else [body]
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent = []
    raw_headers = [
        (b"content-type", b"application/x-amz-json-1.1"),
        (b"x-amz-target", f"RekognitionService.{target}".encode()),
    ]
    raw_headers += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    scope = {"type": "http", "method": method, "path": path, "headers": raw_headers}

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, body_message = sent
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], response_headers, json.loads(body_message["body"])


def test_a_request_in_chunks_is_answered_and_the_signer_is_the_audited_caller(app, audit):
    status, headers, body = request(app, [b'{"Collection', b'Id": "a"}'], authorization=SIGNED.format("rekognition"))
    assert status == 200 and body["StatusCode"] == 200
    assert headers["content-length"] == str(len(json.dumps(body, separators=(",", ":"))))
    assert audit.records[-1].caller == "AKIDLOCAL"


def test_a_body_over_the_limit_is_refused_without_keeping_it(app):
    status, headers, _ = request(app, [b"{" + b" " * 600, b" " * 600 + b"}"])
    assert (status, headers["x-amzn-ErrorType"]) == (413, "RequestEntityTooLargeException")


def test_a_signature_for_another_service_is_refused(app):
    status, _, body = request(app, b"{}", target="ListCollections", authorization=SIGNED.format("s3"))
    assert (status, body["__type"]) == (403, "InvalidSignatureException")


def test_execute_api_signatures_are_accepted(app):
    status, _, _ = request(app, b"{}", target="ListCollections", authorization=SIGNED.format("execute-api"))
    assert status == 200


@pytest.mark.parametrize(("method", "path"), [("GET", "/"), ("POST", "/prod/other")])
def test_only_post_slash_is_served(app, method, path):
    status, headers, _ = request(app, b"{}", method=method, path=path)
    assert (status, headers["x-amzn-ErrorType"]) == (404, "UnknownOperationException")


def test_the_cli_has_serve_on_loopback_by_default():
    args = build_parser().parse_args(["serve", "--port", "9999"])
    assert (args.host, args.port, args.backend) == ("127.0.0.1", 9999, None)


def test_the_protocol_serves_every_operation_the_service_has():
    from facesearch.aws.protocol import OPERATIONS, PROCESSOR_OPERATIONS, snake_case
    from facesearch.collections.service import IN_PROCESS_ONLY, FaceCollectionService
    from facesearch.video import processors

    def public(cls, in_process):
        return {
            name
            for name in dir(cls)
            if not name.startswith("_") and callable(getattr(cls, name)) and name not in in_process
        }

    assert {snake_case(op) for op in OPERATIONS} == public(FaceCollectionService, IN_PROCESS_ONLY)
    assert {snake_case(op) for op in PROCESSOR_OPERATIONS} == public(
        processors.StreamProcessorOperations, processors.IN_PROCESS_ONLY
    )
    assert PROCESSOR_OPERATIONS == processors.OPERATIONS
