"""Wire a service from settings: which store backend, where data lives, which engine. One place, so the CLI,
the Lambda handlers and the tests build the same thing."""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path
from typing import Any

from facesearch.audit import AuditSink, JsonlAuditSink
from facesearch.store.base import VectorStore

BACKENDS = ("embedded", "opensearch")


def default_data_dir() -> Path:
    return Path(os.environ.get("FACESEARCH_HOME", Path.home() / ".local" / "share" / "facesearch"))


def default_caller() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:  # no passwd entry in some containers
        return "local"


def open_store(
    backend: str = "embedded",
    *,
    data_dir: Path | None = None,
    opensearch_url: str | None = None,
    index_prefix: str = "facesearch",
    **options: Any,
) -> VectorStore:
    if backend == "embedded":
        from facesearch.store.embedded import EmbeddedStore

        return EmbeddedStore((data_dir or default_data_dir()) / "store", **options)
    if backend == "opensearch":
        from facesearch.store.opensearch import OpenSearchStore

        url = opensearch_url or os.environ.get("FACESEARCH_OPENSEARCH_URL")
        if not url:
            from facesearch.devtools.opensearch_local import running_url

            url = running_url()  # a server started with `opensearch_local start --daemon`
        if not url:
            raise ValueError(
                "the opensearch backend needs --opensearch-url, FACESEARCH_OPENSEARCH_URL, or a local server "
                "started with `python -m facesearch.devtools.opensearch_local start --daemon`"
            )
        return OpenSearchStore(url, index_prefix=index_prefix, **options)
    raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")


def open_audit(data_dir: Path | None = None) -> AuditSink:
    return JsonlAuditSink((data_dir or default_data_dir()) / "audit.jsonl")


def build_service(
    backend: str = "embedded",
    *,
    data_dir: Path | None = None,
    opensearch_url: str | None = None,
    engine: Any | None = None,
    s3_client: Any | None = None,
):
    from facesearch.collections.service import FaceCollectionService
    from facesearch.engine.engine import FaceEngine

    store = open_store(backend, data_dir=data_dir, opensearch_url=opensearch_url)
    return FaceCollectionService(engine or FaceEngine(), store, open_audit(data_dir), s3_client=s3_client)
