"""One container's state, built once at cold start: settings (validated, with the function's required ones),
the boto3 clients, and the service from ``facesearch.wiring.build_service``.

A missing variable fails the cold start with its name (``SettingsError``), not the first request. Clients honour
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``, which is how the functions reach LocalStack.
"""

from __future__ import annotations

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
    return FunctionRuntime(settings, service, s3, ddb, publisher, stream_client)


__all__ = ["FunctionRuntime", "cold_start"]
