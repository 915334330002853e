"""Synthesize the real CDK app once per session (with cdk-nag), offline: no Docker, no network, tiny layer dirs.

The layer directories are placeholders made here: the template only references them as assets (by hash), and
building the real layers needs PyPI (layers/build.py does that for `cdk synth`/`deploy`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "cdk"))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def synth(tmp_root: Path, context: dict[str, Any]) -> dict[str, Any]:
    from facesearch_cdk.app import build_app

    for inner in ("runtime/python", "models/models"):
        (tmp_root / inner).mkdir(parents=True, exist_ok=True)
        (tmp_root / inner / "placeholder.txt").write_text("asset placeholder for template tests\n")
    ctx = {"runtimeLayerDir": str(tmp_root / "runtime"), "modelsLayerDir": str(tmp_root / "models"), **context}
    # cdk-nag runs as a validation plugin: any unacknowledged finding raises here, failing every test.
    app = build_app(ctx, build_layers=False)
    assembly = app.synth()
    (stack,) = assembly.stacks
    return json.loads(json.dumps(stack.template))


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The default deployment (cdk.json's context)."""
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    return synth(tmp_path_factory.mktemp("layers"), context)


@pytest.fixture(scope="session")
def vpc_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The other branches of the config: VPC, two zone-aware nodes, IAM-only domain access (no fine-grained
    access), x86_64, destroy on teardown, a shared (polling) Kinesis consumer, COMPLIANCE-mode audit lock."""
    context = json.loads((REPO / "cdk.json").read_text())["context"]  # feature flags as `cdk synth` sees them
    context |= {
        "architecture": "x86_64",
        "vpc": True,
        "removalPolicy": "destroy",
        "openSearch": {
            "instanceType": "r7g.large.search",
            "instanceCount": 2,
            "volumeGiB": 50,
            "fineGrainedAccess": False,
        },
        "streams": {"consumer": "shared", "framesShards": 4},
        "auditObjectLockMode": "COMPLIANCE",
        "auditRetentionDays": 30,
    }
    return synth(tmp_path_factory.mktemp("layers-vpc"), context)


@pytest.fixture(scope="session")
def no_video_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A gallery-and-search-only deployment (`video=false`): the cheapest idle shape (docs/deploy.md), reaching
    the domain over plain http as the local cloud does."""
    context = json.loads((REPO / "cdk.json").read_text())["context"] | {
        "video": False,
        "openSearch": {"scheme": "http"},
    }
    return synth(tmp_path_factory.mktemp("layers-no-video"), context)
