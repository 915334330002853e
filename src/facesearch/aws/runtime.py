"""One container's state, built once at cold start: settings (validated, with the function's required ones),
the boto3 clients, and the service from ``facesearch.wiring.build_service``.

A missing variable fails the cold start with its name (``SettingsError``), not the first request. Clients honour
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``, which is how the functions reach LocalStack.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Any

from facesearch.aws.events import EventPublisher
from facesearch.collections.service import FaceCollectionService
from facesearch.settings import Settings, load_settings
from facesearch.wiring import build_service


@dataclass
class FunctionRuntime:
    settings: Settings
    service: FaceCollectionService
    s3: Any
    dynamodb: Any | None = None
    events: EventPublisher | None = None
    kinesis: Any | None = None


def cold_start(*required: str, events: bool = False, dynamodb: bool = False, kinesis: bool = False) -> FunctionRuntime:
    """Read and check the settings, make the clients, build the service (its engine loads on first use)."""
    settings = load_settings()
    settings.require(*required)
    import boto3

    session = boto3.session.Session()
    s3 = session.client("s3")
    service = build_service(settings, s3_client=s3)
    publisher = (
        EventPublisher(settings.event_bus, client=session.client("events")) if events and settings.event_bus else None
    )
    ddb = session.client("dynamodb") if dynamodb else None
    stream_client = session.client("kinesis") if kinesis else None
    runtime = FunctionRuntime(settings, service, s3, ddb, publisher, stream_client)
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # in Lambda (and the local cloud), not in tests or the CLI
        freeze_init_objects()
    return runtime


def freeze_init_objects() -> None:
    """Exempt what init built (modules, classes, clients: ~115k objects, all alive for the container's life) from
    later garbage collections. Without this the first full collection came during the first request and walked
    all of them: ~50 ms of its CPU time (BENCHMARKS.md, "Cold start"); every later one would walk them again."""
    gc.freeze()


__all__ = ["FunctionRuntime", "cold_start", "freeze_init_objects"]
