"""Opaque NextToken values: base64 of a small JSON cursor, bound to the operation and collection it came from."""

from __future__ import annotations

import base64
import binascii
import json

from facesearch.errors import InvalidPaginationTokenException


def encode_token(scope: str, after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"s": scope, "a": after}).encode()).decode()


def decode_token(token: str | None, scope: str) -> str | None:
    if token is None:
        return None
    if not isinstance(token, str):
        raise InvalidPaginationTokenException(f"NextToken must be a string, got {type(token).__name__}")
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = data["a"]
        if data["s"] != scope or not isinstance(after, str):
            raise ValueError("token belongs to another request")
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise InvalidPaginationTokenException(f"NextToken is invalid for this request: {exc}") from exc
    return after
