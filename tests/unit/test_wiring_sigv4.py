"""With FACESEARCH_OPENSEARCH_AUTH=sigv4 the wiring hands the OpenSearch store a SigV4 signer for service ``es``
built from the process's credentials (in Lambda: the execution role); the store never imports boto3 itself."""

from __future__ import annotations

from typing import Any

import facesearch.store.opensearch as opensearch_store
from facesearch.settings import load_settings
from facesearch.wiring import open_store


def test_sigv4_settings_give_the_store_a_signer_for_es_in_the_region(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    given: dict[str, Any] = {}

    class Recorder:
        def __init__(self, url: str, **options: Any) -> None:
            given.update(options, url=url)

    monkeypatch.setattr(opensearch_store, "OpenSearchStore", Recorder)
    endpoint = "https://search-faces.eu-west-1.es.amazonaws.com"
    settings = load_settings(backend="opensearch", opensearch_url=endpoint, opensearch_auth="sigv4", region="eu-west-1")
    open_store(settings)
    headers = given["http_auth"]("GET", endpoint + "/_cluster/health", None, {})
    scope = headers["Authorization"].split("Credential=")[1].split(",")[0]
    assert scope.startswith("AKIDEXAMPLE/") and scope.endswith("/eu-west-1/es/aws4_request")
    assert given["url"] == endpoint


def test_no_signer_without_sigv4(monkeypatch):
    given: dict[str, Any] = {}
    monkeypatch.setattr(opensearch_store, "OpenSearchStore", lambda url, **o: given.update(o))
    open_store(load_settings(backend="opensearch", opensearch_url="http://127.0.0.1:4566/opensearch/us-east-1/d"))
    assert "http_auth" not in given
