"""OpenSearchStore behind a path prefix (as LocalStack serves domains) and with an injected SigV4 signer.

A small reverse proxy on a free loopback port serves the real local node (the ``opensearch_url`` fixture)
only under ``/opensearch/us-east-1/facesearch-test`` and answers 404 anywhere else, so a request that drops
the prefix fails. It records what arrives, so the tests can check that every request carried the prefix and,
with a signer, a SigV4 signature computed over the prefixed path — the path AWS and LocalStack verify.
"""

from __future__ import annotations

import http.client
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from face_records import face_records

from facesearch.store.opensearch import OpenSearchStore
from facesearch.store.records import DIMENSION, CollectionRecord, UserRecord

pytestmark = pytest.mark.opensearch

PREFIX = "/opensearch/us-east-1/facesearch-test"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
T0 = datetime(2024, 5, 17, 9, 30, tzinfo=UTC)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class PrefixProxy:
    url: str  # the proxy's base URL, with the prefix
    seen: list[Seen] = field(default_factory=list)


def _handler(upstream: str, seen: list[Seen]) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the clients expect

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if self.path != PREFIX and not self.path.startswith((PREFIX + "/", PREFIX + "?")):
                self._reply(404, {"Content-Type": "application/json"}, b'{"error":"no route without the prefix"}')
                return
            rest = self.path[len(PREFIX) :] or "/"
            if rest.startswith("?"):
                rest = "/" + rest
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            try:
                conn.request(self.command, target.path.rstrip("/") + rest, body=body or None, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                out = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}}
                self._reply(response.status, out, payload)
            finally:
                conn.close()

        def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return Handler


@pytest.fixture
def proxy(opensearch_url: str) -> Iterator[PrefixProxy]:
    seen: list[Seen] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(opensearch_url, seen))  # a free port
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield PrefixProxy(f"http://127.0.0.1:{server.server_address[1]}{PREFIX}", seen)
    finally:
        server.shutdown()
        server.server_close()


def exercise(store: OpenSearchStore) -> None:
    """Every kind of request the store makes: index admin, bulk, k-NN search, mget, get, count, delete."""
    store.create_collection(CollectionRecord("c", T0, "test"))
    try:
        vectors = np.random.default_rng(5).normal(0, 0.05, (30, DIMENSION)).astype(np.float32)
        store.add_faces("c", face_records(vectors))
        hits = store.search("c", vectors[7], k=3)
        assert hits[0].face.face_id == "face-000007" and hits[0].distance == 0.0
        assert [h.distance for h in hits] == sorted(h.distance for h in hits)
        assert store.count_faces("c") == 30
        assert [c.collection_id for c in store.list_collections()] == ["c"]
        store.create_user("c", UserRecord("u1", T0))
        store.set_face_user("c", ["face-000001"], "u1")
        assert store.get_user("c", "u1").status == "ACTIVE"  # type: ignore[union-attr]
        assert store.delete_faces("c", ["face-000001", "face-999999"]) == ["face-000001"]
        assert set(store.get_faces("c", ["face-000001", "face-000002"])) == {"face-000002"}
    finally:
        store.delete_collection("c")
    assert store.list_collections() == []


def test_a_path_prefixed_endpoint_serves_every_operation(proxy: PrefixProxy) -> None:
    store = OpenSearchStore(proxy.url + "/", index_prefix=f"fsprefix-{uuid.uuid4().hex[:12]}-")
    try:
        exercise(store)
    finally:
        store.close()
    paths = [s.path for s in proxy.seen]
    assert paths and all(p.startswith(PREFIX + "/") for p in paths), [p for p in paths if not p.startswith(PREFIX)]
    assert any("/_bulk" in p for p in paths) and any("/_search" in p for p in paths)
    assert any("/_mget" in p for p in paths)
    assert not any("authorization" in s.headers for s in proxy.seen)  # nothing was asked to sign


def _signature_checks(seen: Seen, credentials: Any, region: str) -> None:
    """Recompute the SigV4 signature of a received request with botocore and compare."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    authorization = seen.headers["authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/")
    assert f"/{region}/es/aws4_request" in authorization
    fields = dict(part.strip().split("=", 1) for part in authorization.split(" ", 1)[1].split(","))
    signed = fields["SignedHeaders"].split(";")
    assert "host" in signed and "x-amz-date" in signed and "x-amz-content-sha256" in signed
    request = AWSRequest(
        method=seen.method,
        url=f"http://{seen.headers['host']}{seen.path}",
        data=seen.body,
        headers={name: seen.headers[name] for name in signed},
    )
    request.context["timestamp"] = seen.headers["x-amz-date"]
    auth = SigV4Auth(credentials, "es", region)
    canonical = auth.canonical_request(request)
    assert canonical.split("\n")[1].startswith(PREFIX + "/")  # the prefixed path is what was signed
    assert auth.signature(auth.string_to_sign(request, canonical), request) == fields["Signature"]


@pytest.mark.parametrize("connection", ["urllib3", "requests"])
def test_an_injected_sigv4_signer_signs_every_request_over_the_prefixed_path(
    proxy: PrefixProxy, connection: str
) -> None:
    from botocore.credentials import Credentials
    from opensearchpy import RequestsAWSV4SignerAuth, RequestsHttpConnection, Urllib3AWSV4SignerAuth

    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    if connection == "urllib3":  # opensearch-py's default connection class
        options: dict[str, Any] = {"http_auth": Urllib3AWSV4SignerAuth(credentials, "us-east-1", "es")}
    else:
        options = {
            "http_auth": RequestsAWSV4SignerAuth(credentials, "us-east-1", "es"),
            "connection_class": RequestsHttpConnection,
        }
    # Loopback plain HTTP, as LocalStack serves it; off loopback a signed store insists on https.
    store = OpenSearchStore(proxy.url, index_prefix=f"fssigned-{uuid.uuid4().hex[:12]}-", **options)
    try:
        exercise(store)
    finally:
        store.close()
    assert len(proxy.seen) > 10
    for seen in proxy.seen:
        assert seen.path.startswith(PREFIX + "/")
        _signature_checks(seen, credentials, "us-east-1")
