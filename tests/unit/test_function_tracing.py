"""The handlers' Tracer (facesearch.aws.tracing): X-Ray where Lambda traces, and where nothing is traced no X-Ray SDK
import at all — it was the largest single import of a cold start (BENCHMARKS.md, "Cold start")."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_lambda_powertools import Tracer

from facesearch.aws.tracing import NoTraceProvider, lambda_tracer, tracing_enabled

REPO = Path(__file__).resolve().parents[2]
HANDLERS = ("api", "index_faces", "search_faces")

# Imports every handler module (each under its own name, as three Lambda functions would) and reports what it saw.
IMPORT_HANDLERS = """
import importlib.util, json, sys
seen = {}
for name in sys.argv[1:]:
    spec = importlib.util.spec_from_file_location(f"{name}_app", f"functions/{name}/app.py")
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    seen[name] = {"provider": type(module.tracer.provider).__module__, "disabled": module.tracer.disabled}
import botocore.client
patcher = sys.modules.get("aws_xray_sdk.core.patcher")  # looked up, not imported: the handlers' imports count
seen["xray_modules"] = sorted(m for m in sys.modules if m.startswith("aws_xray_sdk"))
seen["patched"] = sorted(patcher._PATCHED_MODULES) if patcher else []
seen["botocore_wrapped"] = type(vars(botocore.client.BaseClient)["_make_api_call"]).__name__ == "FunctionWrapper"
print(json.dumps(seen))
"""


def import_handlers(tmp_path: Path, **env: str) -> dict:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POWERTOOLS_", "LAMBDA_", "AWS_SAM", "AWS_CHALICE"))
    }
    environment.update(
        {
            "FACESEARCH_HOME": str(tmp_path),
            # As deployed; opensearch-py connects on first use, so no server is needed (nor a store lock per handler).
            "FACESEARCH_BACKEND": "opensearch",
            "FACESEARCH_OPENSEARCH_URL": "http://127.0.0.1:9",
            "FACESEARCH_RESULTS_BUCKET": "results",
            "FACESEARCH_IDEMPOTENCY_TABLE": "idempotency",
            "FACESEARCH_EVENT_BUS": "events",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
            **env,
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_HANDLERS, *HANDLERS],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=environment,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_with_tracing_disabled_no_handler_imports_the_xray_sdk(tmp_path: Path) -> None:
    seen = import_handlers(tmp_path, POWERTOOLS_TRACE_DISABLED="true", LAMBDA_TASK_ROOT=str(tmp_path))
    assert seen["xray_modules"] == []
    assert not seen["botocore_wrapped"]
    for name in HANDLERS:
        assert seen[name] == {"provider": "facesearch.aws.tracing", "disabled": True}


def test_in_lambda_with_active_tracing_the_handlers_trace_with_xray(tmp_path: Path) -> None:
    seen = import_handlers(tmp_path, LAMBDA_TASK_ROOT=str(tmp_path))
    for name in HANDLERS:
        assert seen[name] == {"provider": "aws_xray_sdk.core.async_recorder", "disabled": False}
    assert seen["patched"] == ["botocore", "requests"]  # AWS calls and OpenSearch (SigV4 over requests)
    assert seen["botocore_wrapped"]


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({}, False),  # outside Lambda there is no X-Ray daemon to send to
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_CHALICE_CLI_MODE": "true"}, False),
    ],
)
def test_tracing_is_on_exactly_when_powertools_would_trace(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], enabled: bool
) -> None:
    for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing_enabled() is enabled


@pytest.fixture()
def untraced(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tracer]:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    Tracer._reset_config()
    yield lambda_tracer()
    Tracer._reset_config()


def test_an_untraced_tracer_still_decorates_handlers_methods_generators_and_coroutines(untraced: Tracer) -> None:
    assert isinstance(untraced.provider, NoTraceProvider) and untraced.disabled

    @untraced.capture_lambda_handler
    def handler(event: dict, context: object) -> dict:
        return {"echo": event}

    @untraced.capture_method
    def method(x: int) -> int:
        return x * 2

    @untraced.capture_method
    def numbers(n: int) -> Iterator[int]:
        yield from range(n)

    @untraced.capture_method
    async def later(x: int) -> int:
        return x + 1

    @untraced.capture_method
    def fails() -> None:
        raise ValueError("kept")

    assert handler({"a": 1}, None) == {"echo": {"a": 1}}
    assert method(21) == 42
    assert list(numbers(3)) == [0, 1, 2]
    assert asyncio.run(later(1)) == 2
    with pytest.raises(ValueError, match="kept"):
        fails()
    untraced.put_annotation("k", "v")
    untraced.put_metadata("k", {"v": 1})
