"""The handlers' Powertools ``Tracer``, without the X-Ray SDK's cost where nothing is traced.

Powertools' ``Tracer()`` imports ``aws_xray_sdk.core`` even when tracing is off (it asks the SDK to disable
itself): ~0.2 s of CPU per cold start for nothing (BENCHMARKS.md, "Cold start"). Off — ``POWERTOOLS_TRACE_DISABLED``,
or outside Lambda: Powertools' own rule — the Tracer here gets a provider that records nothing, so the SDK is never
imported; the decorators work unchanged. On (Lambda with active tracing), it is Powertools' real X-Ray Tracer,
patching only the libraries our calls go through: botocore (every AWS call) and requests (opensearch-py's SigV4
connection), not every library ``patch_all`` knows (sqlite3, httpx, database drivers ...).
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

# What the functions call out through: boto3 (AWS) and requests (OpenSearch with SigV4).
PATCHED_MODULES = ("botocore", "requests")


def tracing_enabled() -> bool:
    """Powertools' own rule, asked of Powertools: off when ``POWERTOOLS_TRACE_DISABLED`` is true, outside Lambda
    (no ``LAMBDA_TASK_ROOT``), or under the SAM/Chalice local emulators."""
    return not Tracer._is_tracer_disabled()


class NoTraceSegment(BaseSegment):
    """A subsegment that records nothing."""

    def close(self, end_time: int | None = None) -> None:
        pass

    def add_subsegment(self, subsegment: Any) -> None:
        pass

    def remove_subsegment(self, subsegment: Any) -> None:
        pass

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        pass


class NoTraceProvider(BaseProvider):
    """Powertools' provider interface with nothing behind it: what a Tracer uses when tracing is off."""

    @contextlib.contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Iterator[BaseSegment]:
        yield NoTraceSegment()

    @contextlib.asynccontextmanager
    async def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> AsyncIterator[BaseSegment]:
        yield NoTraceSegment()

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def patch(self, modules: Sequence[str]) -> None:
        pass

    def patch_all(self) -> None:
        pass


class _UntracedTracer(Tracer):
    """Powertools' Tracer, disabled, on the ``NoTraceProvider``. Disabling normally tells the X-Ray SDK to stop
    (importing it); with no SDK in play there is nothing to stop."""

    @staticmethod
    def _disable_tracer_provider() -> None:
        pass


def lambda_tracer(patch_modules: Sequence[str] = PATCHED_MODULES) -> Tracer:
    """The Tracer a handler decorates with: X-Ray when tracing is on, a no-op (and no X-Ray SDK import) when off."""
    if not tracing_enabled():
        return _UntracedTracer(provider=NoTraceProvider(), disabled=True, auto_patch=False)
    if isinstance(Tracer._config.get("provider"), NoTraceProvider):  # a process that traced nothing until now
        Tracer._reset_config()
    return Tracer(patch_modules=list(patch_modules))


__all__ = ["PATCHED_MODULES", "NoTraceProvider", "lambda_tracer", "tracing_enabled"]
