"""The ``opensearch_url`` fixture: a real local OpenSearch + k-NN for the session, or the one in the env.

tests/conftest.py imports it (``from opensearch_fixture import opensearch_url``). Set
FACESEARCH_OPENSEARCH_URL to use a server you already run (e.g. ``python -m
facesearch.devtools.opensearch_local start --daemon``). If no server can be started the fixture fails with
the reason: a test that needs OpenSearch never passes silently without one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def opensearch_url() -> Iterator[str]:
    configured = os.environ.get("FACESEARCH_OPENSEARCH_URL", "").strip()
    if configured:
        yield configured.rstrip("/")
        return
    from facesearch.devtools.opensearch_local import OpenSearchLocalError, start

    try:
        server = start()
    except OpenSearchLocalError as exc:
        pytest.fail(f"could not start a local OpenSearch for the tests:\n{exc}", pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()
