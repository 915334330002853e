"""The one place a service is assembled from settings: store, audit sink, engine.

The CLI, the demo, the tests and every Lambda handler call ``build_service``; nothing else constructs a
``FaceCollectionService`` from parts (tests/unit/test_wiring.py checks the CLI). Heavy parts load lazily: the
ONNX models only when an image is analysed, boto3 only when an AWS sink or SigV4 is configured.
"""

from __future__ import annotations

import getpass
import socket
import threading
from typing import TYPE_CHECKING, Any

from facesearch.audit import AuditSink, JsonlAuditSink
from facesearch.settings import Settings, load_settings

if TYPE_CHECKING:
    from facesearch.collections.service import FaceCollectionService
    from facesearch.engine.engine import AnalyzedImage, FaceEngine
    from facesearch.store.base import VectorStore


def default_caller() -> str:
    """Who is asking, for the audit log, when the caller names no one: ``user@host`` locally."""
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:  # no passwd entry in some containers
        return "local"


class LazyEngine:
    """Builds the ``FaceEngine`` on first use: listing or deleting faces loads no model (~0.5 s and ~200 MB)."""

    def __init__(self, threads: int = 0) -> None:
        self._threads = threads
        self._engine: FaceEngine | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def get(self) -> FaceEngine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    from facesearch.engine.engine import FaceEngine

                    self._engine = FaceEngine(threads=self._threads or None)
        return self._engine

    def analyze(self, *args: Any, **kwargs: Any) -> AnalyzedImage:
        return self.get().analyze(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # detector, embedder, decode … of the real engine
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.get(), name)


def open_store(settings: Settings, **options: Any) -> VectorStore:
    if settings.backend == "embedded":
        from facesearch.store.embedded import EmbeddedStore

        return EmbeddedStore(settings.home / "store", **options)
    from facesearch.store.opensearch import OpenSearchStore

    assert settings.opensearch_url  # guaranteed by Settings validation
    if settings.opensearch_auth == "sigv4":
        options.setdefault("aws_region", settings.region)
    return OpenSearchStore(settings.opensearch_url, index_prefix=settings.index_prefix, **options)


def open_audit(settings: Settings, *, s3_client: Any | None = None) -> AuditSink:
    if settings.audit_sink == "jsonl":
        return JsonlAuditSink(settings.home / "audit.jsonl")
    from facesearch.aws.audit import S3AuditSink  # the only AWS sink; imported only when configured

    assert settings.audit_bucket
    return S3AuditSink(settings.audit_bucket, prefix=settings.audit_prefix, client=s3_client)


def build_service(
    settings: Settings | None = None,
    *,
    engine: Any | None = None,
    store: VectorStore | None = None,
    audit: AuditSink | None = None,
    s3_client: Any | None = None,
) -> FaceCollectionService:
    """The service for ``settings`` (read from the environment when omitted). Parts passed in win: tests hand
    in a shared engine or a memory audit sink; handlers hand in their boto3 clients."""
    from facesearch.collections.service import FaceCollectionService

    settings = settings or load_settings()
    return FaceCollectionService(
        engine if engine is not None else LazyEngine(settings.threads),
        store if store is not None else open_store(settings),
        audit if audit is not None else open_audit(settings, s3_client=s3_client),
        s3_client=s3_client,
        arn_prefix=settings.arn_prefix,
        default_floor=settings.min_floor,
        false_candidate_budget=settings.false_candidate_budget,
    )
