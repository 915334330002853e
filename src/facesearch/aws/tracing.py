"""The handlers' Powertools ``Tracer``, without the X-Ray SDK's cost where nothing is traced.

Powertools' ``Tracer()`` imports ``aws_xray_sdk.core`` even when tracing is off (it asks the SDK to disable
itself), which was the largest single import of a cold start (~0.2–0.3 s; BENCHMARKS.md, "Cold start"). Off —
``POWERTOOLS_TRACE_DISABLED``, or outside Lambda, exactly Powertools' own rule — the Tracer here gets a provider
that records nothing, so the SDK is never imported; the decorators work unchanged. On (Lambda with active tracing),
it is Powertools' real X-Ray Tracer, patching only the libraries our calls go through: botocore (every AWS call)
and requests (opensearch-py's SigV4 connection), instead of ``patch_all``'s fourteen.
"""

from __future__ import annotations

import contextlib
import numbers
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

# What the functions call out through: boto3 (AWS) and requests (OpenSearch with SigV4).
PATCHED_MODULES = ("botocore", "requests")


def tracing_enabled() -> bool:
    """Powertools' own rule (``Tracer._is_tracer_disabled``): off when ``POWERTOOLS_TRACE_DISABLED`` is true,
    outside Lambda (no ``LAMBDA_TASK_ROOT``), or under SAM/Chalice local emulators."""
    if resolve_truthy_env_var_choice(env=os.getenv("POWERTOOLS_TRACE_DISABLED", "false")):
        return False
    if not os.getenv("LAMBDA_TASK_ROOT"):
        return False
    return not (os.getenv("AWS_SAM_LOCAL") or os.getenv("AWS_CHALICE_CLI_MODE"))


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
