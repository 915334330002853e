"""One local cloud per test session: LocalStack (no Docker) on a free port + OpenSearch + the probe CDK app.

If anything cannot start, the tests fail with the reason (never skip): the local cloud is part of the product.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from facesearch.devtools import localcloud

PROBE_APP = Path(__file__).resolve().parent / "cdk_app"
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def local_cloud() -> Iterator[dict]:
    state = tempfile.mkdtemp(prefix="facesearch-localcloud-test-")
    previous = os.environ.get("FACESEARCH_LOCALCLOUD_DIR")
    os.environ["FACESEARCH_LOCALCLOUD_DIR"] = state
    try:
        try:
            status = localcloud.up(port=None, app_dir=PROBE_APP, app=f"{sys.executable} app.py")
        except localcloud.LocalCloudError as exc:
            pytest.fail(f"the local cloud did not come up: {exc}", pytrace=False)
        TIMINGS.update(status["timings_s"])
        status["timings_s"] = TIMINGS  # tests add theirs (destroy); the terminal summary prints them all
        yield status
    finally:
        with contextlib.suppress(Exception):
            localcloud.down()
        if previous is None:
            os.environ.pop("FACESEARCH_LOCALCLOUD_DIR", None)
        else:
            os.environ["FACESEARCH_LOCALCLOUD_DIR"] = previous
        shutil.rmtree(state, ignore_errors=True)
        if TIMINGS:
            record = localcloud.repo_root() / ".facesearch" / "localcloud-test-timings.json"
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(TIMINGS, indent=2) + "\n")


@pytest.fixture(scope="session")
def aws(local_cloud: dict):
    """boto3 clients bound to the local cloud (the real SDK, the real endpoints)."""

    return lambda service: localcloud.client(service, local_cloud["endpoint_url"])


def pytest_terminal_summary(terminalreporter) -> None:
    if TIMINGS:
        terminalreporter.write_sep("-", "local cloud timings (s)")
        terminalreporter.write_line(", ".join(f"{name} {value:.1f}" for name, value in TIMINGS.items()))
