"""The one place a service is assembled from settings: store, audit sink, engine.

The CLI, the demo, the tests and every Lambda handler call ``build_service``; nothing else constructs a
``FaceCollectionService`` from parts (tests/unit/test_wiring.py checks the CLI). Heavy parts load lazily: the
ONNX models only when an image is analysed, boto3 only when an AWS sink or SigV4 is configured.
"""

from __future__ import annotations

import getpass
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facesearch.audit import AuditSink, ChainedAuditSink, JsonlAuditSink, JsonlCheckpointStore, load_key
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
        from facesearch.aws.opensearch import sigv4_auth  # boto3 only when SigV4 is configured

        assert settings.region  # guaranteed by Settings validation
        options.setdefault("http_auth", sigv4_auth(settings.region))
    return OpenSearchStore(settings.opensearch_url, index_prefix=settings.index_prefix, **options)


def audit_log_path(settings: Settings) -> Path:
    return settings.home / "audit.jsonl"


def checkpoint_store(settings: Settings, key: bytes) -> JsonlCheckpointStore:
    return JsonlCheckpointStore(settings.audit_checkpoints or settings.home / "audit.checkpoints.jsonl", key)


def open_audit(settings: Settings, *, s3_client: Any | None = None) -> AuditSink:
    """The configured sink, sealed into a tamper-evident chain (audit/chain.py). The JSONL log's key defaults
    to a 0600 key file beside it; an S3 sink is sealed when a key is given, ``FACESEARCH_AUDIT_KEY`` or (as the
    CDK stack does) ``FACESEARCH_AUDIT_KEY_SECRET``, a Secrets Manager secret. Object Lock keeps S3 records from
    being altered; the chain shows a record deleted for good (GOVERNANCE retention can be bypassed)."""
    if settings.audit_sink == "jsonl":
        key = load_key(key=settings.audit_key, home=settings.home)
        return ChainedAuditSink(
            JsonlAuditSink(audit_log_path(settings)),
            key,
            checkpoints=checkpoint_store(settings, key),
            checkpoint_every=settings.audit_checkpoint_every,
        )
    from facesearch.aws.audit import S3AuditSink  # the only AWS sink; imported only when configured

    assert settings.audit_bucket
    sink = S3AuditSink(settings.audit_bucket, prefix=settings.audit_prefix, client=s3_client)
    seal = s3_audit_key(settings)
    if seal:
        return ChainedAuditSink(sink, seal, checkpoint_every=settings.audit_checkpoint_every)
    return sink


def s3_audit_key(settings: Settings) -> bytes | None:
    """The key that seals (and verifies) the S3 audit log, if one is configured."""
    if settings.audit_key:
        return settings.audit_key.encode()
    if settings.audit_key_secret:
        from facesearch.aws.audit import read_audit_key

        return read_audit_key(settings.audit_key_secret)
    return None


def build_service(
    settings: Settings | None = None,
    *,
    engine: Any | None = None,
    store: VectorStore | None = None,
    audit: AuditSink | None = None,
    s3_client: Any | None = None,
) -> FaceCollectionService:
    """The service for ``settings`` (read from the environment when omitted). Parts passed in win: tests hand
    in a shared engine or a memory audit sink; handlers hand in their boto3 clients.

    A service minimum floor below 80 needs ``FACESEARCH_ALLOW_LOW_FLOOR=1`` (Settings refuses it otherwise)
    and the service records it in the audit log as it starts (``ConfigureServiceFloor``)."""
    from facesearch.collections.service import FaceCollectionService

    settings = settings or load_settings()
    return FaceCollectionService(
        engine if engine is not None else LazyEngine(settings.threads),
        store if store is not None else open_store(settings),
        audit if audit is not None else open_audit(settings, s3_client=s3_client),
        s3_client=s3_client,
        arn_prefix=settings.arn_prefix,
        min_floor=settings.min_floor,
        allow_low_floor=settings.allow_low_floor,
        false_candidate_budget=settings.false_candidate_budget,
    )


def build_processors(settings: Settings, service: Any, *, dynamodb: Any | None = None) -> Any:
    """The stream-processor operations over the registry the settings name: the DynamoDB state table when
    ``FACESEARCH_STATE_TABLE`` is set (AWS), else a JSON file under ``FACESEARCH_HOME``."""
    from facesearch.video.processors import FileProcessorRegistry, StreamProcessorOperations

    registry: Any
    if settings.state_table:
        from facesearch.aws.processors import DynamoDBProcessorRegistry

        if dynamodb is None:
            import boto3

            dynamodb = boto3.client("dynamodb")
        registry = DynamoDBProcessorRegistry(dynamodb, settings.state_table)
    else:
        registry = FileProcessorRegistry(settings.home / "stream_processors.json")
    return StreamProcessorOperations(
        service, registry, frames_stream=settings.frames_stream, results_stream=settings.results_stream
    )
