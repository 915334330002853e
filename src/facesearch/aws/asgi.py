"""A thin ASGI app over the Rekognition protocol adapter, for ``facesearch serve`` (uvicorn runs it).

It only moves bytes: read the body (refusing more than the limit while reading), hand it to
``RekognitionProtocol`` in a worker thread (the service is synchronous and CPU-bound), write the response.
There is no IAM here: a SigV4 ``Authorization`` header is read for who signed (recorded in the audit log) and for
its scope — a signature made for a service other than ``execute-api`` or ``rekognition`` is refused, as API
Gateway would refuse it — but not verified against a secret.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from facesearch.aws.protocol import RekognitionProtocol, caller_from_authorization, signing_scope_service

ACCEPTED_SCOPES = frozenset({"execute-api", "rekognition"})


class RekognitionAsgiApp:
    def __init__(self, protocol: RekognitionProtocol, *, workers: int = 2) -> None:
        self.protocol = protocol
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="facesearch-serve")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            self.executor.shutdown(wait=False)
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.protocol.max_body_bytes
        body, too_large = await _read_body(receive, limit)
        authorization = headers.get("authorization")
        signed_for = signing_scope_service(authorization)
        if scope["method"] != "POST" or scope["path"] != "/":
            response = self.protocol.error("UnknownOperationException", 404, "only POST / is served", _rid())
        elif signed_for is not None and signed_for not in ACCEPTED_SCOPES:
            response = self.protocol.error(
                "InvalidSignatureException", 403, f"credential scope names service {signed_for!r}", _rid()
            )
        elif too_large:
            response = self.protocol.error(
                "RequestEntityTooLargeException", 413, f"body is over the limit of {limit} bytes", _rid()
            )
        else:
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(
                self.executor,
                lambda: self.protocol.handle(
                    target=headers.get("x-amz-target"),
                    content_type=headers.get("content-type"),
                    body=body,
                    caller=caller_from_authorization(authorization) or "anonymous",
                    purpose=headers.get("x-facesearch-purpose"),
                ),
            )
        out = [(k.encode(), v.encode()) for k, v in response.headers.items()]
        out.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        await send({"type": "http.response.body", "body": response.body})


async def _read_body(receive: Any, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks), size > limit


def _rid() -> str:
    import uuid

    return str(uuid.uuid4())


__all__ = ["RekognitionAsgiApp"]
