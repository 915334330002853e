"""One call to a stock boto3 Rekognition client for a facesearch endpoint.

    from facesearch.client import rekognition_client
    rek = rekognition_client("https://abc123.execute-api.eu-west-1.amazonaws.com/prod", region="eu-west-1")
    rek.search_faces_by_image(CollectionId="staff", Image={"Bytes": photo})["FaceMatches"][0]["ReviewRequired"]

Two things differ from talking to Rekognition, and this helper handles both without patching botocore:

- API Gateway with IAM auth checks a SigV4 signature for service ``execute-api``, while the rekognition client
  signs for ``rekognition``. A ``before-call`` handler sets ``context['signing']['signing_name']``, which
  botocore's signer honours. For ``facesearch serve`` (no IAM) pass ``signing_name=None`` to keep ``rekognition``.
- facesearch answers with additive fields (``ReviewRequired``, ``MatchExplanation``, ``FaceMatchThresholdFloor``,
  ``FaceSizePixels``, ``SearchedFaces``) that botocore's Rekognition model does not know, so its parser drops
  them. An ``after-call`` handler reads the raw JSON body and puts back every field the parser left out, at the
  same place in the response — the review flag reaches whoever acts on a match.
"""

from __future__ import annotations

import json
from typing import Any

SERVICE = "rekognition"


def rekognition_client(
    endpoint_url: str,
    *,
    region: str = "us-east-1",
    signing_name: str | None = "execute-api",
    expose_extensions: bool = True,
    session: Any | None = None,
    **client_kwargs: Any,
) -> Any:
    """A ``boto3.client("rekognition")`` for ``endpoint_url``, signing for ``signing_name`` and (by default)
    exposing facesearch's extension fields in its responses."""
    import boto3

    session = session or boto3.session.Session()
    client = session.client(SERVICE, endpoint_url=endpoint_url, region_name=region, **client_kwargs)
    if signing_name:
        client.meta.events.register(f"before-call.{SERVICE}", _signing_name_handler(signing_name))
    if expose_extensions:
        client.meta.events.register(f"after-call.{SERVICE}", merge_extensions)
    return client


def _signing_name_handler(name: str) -> Any:
    def set_signing_name(context: dict[str, Any], **_: Any) -> None:
        context.setdefault("signing", {})["signing_name"] = name

    return set_signing_name


def merge_extensions(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
    """``after-call`` handler: copy what the stock parser dropped from the raw JSON body into ``parsed``."""
    if http_response is None or http_response.status_code >= 300:
        return
    try:
        raw = json.loads(http_response.content or b"{}")
    except (ValueError, UnicodeDecodeError):
        return
    _merge(parsed, raw)


def _merge(parsed: Any, raw: Any) -> None:
    """Only add keys the parser did not produce; never touch what it did (timestamps, blobs stay typed)."""
    if isinstance(parsed, dict) and isinstance(raw, dict):
        for key, value in raw.items():
            if key not in parsed:
                parsed[key] = value
            else:
                _merge(parsed[key], value)
    elif isinstance(parsed, list) and isinstance(raw, list) and len(parsed) == len(raw):
        for p, r in zip(parsed, raw, strict=True):
            _merge(p, r)


__all__ = ["merge_extensions", "rekognition_client"]
