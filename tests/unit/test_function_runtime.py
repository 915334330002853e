"""facesearch.aws.runtime.cold_start: what one container builds once, and that in Lambda what it built is exempt from
later garbage collections (the first full collection otherwise landed in the first request: BENCHMARKS.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from facesearch.aws import runtime


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    for name, value in {
        "FACESEARCH_HOME": str(tmp_path),
        "FACESEARCH_BACKEND": "opensearch",
        "FACESEARCH_OPENSEARCH_URL": "http://127.0.0.1:9",  # opensearch-py connects on first use: nothing listens
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    frozen: list[str] = []
    monkeypatch.setattr(runtime, "freeze_init_objects", lambda: frozen.append("frozen"))
    return frozen


def test_in_lambda_the_cold_start_freezes_what_init_built(env: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "facesearch-api")
    built = runtime.cold_start(dynamodb=True)
    assert env == ["frozen"]
    assert built.dynamodb is not None and built.events is None and built.kinesis is None


def test_outside_lambda_nothing_is_frozen(env: list[str]) -> None:
    runtime.cold_start()  # tests and the CLI build services many times in one process: freezing would leak
    assert env == []


def test_freezing_moves_the_live_objects_out_of_the_collector() -> None:
    import gc

    try:
        runtime.freeze_init_objects()
        assert gc.get_freeze_count() > 1000  # modules, classes, functions: all exempt from later collections
    finally:
        gc.unfreeze()  # this is a test process, not a container
