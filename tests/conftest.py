"""Shared fixtures: where the shared datasets live, and one face engine per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from opensearch_fixture import opensearch_url  # noqa: F401  (session fixture: a real local OpenSearch)

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASETS = REPO_ROOT.parent / "shared" / "datasets"
FACES_DEV = DATASETS / "faces-dev"
CROWD = DATASETS / "crowd" / "largest_selfie.jpg"


@pytest.fixture(scope="session")
def faces_dev() -> Path:
    if not (FACES_DEV / "identities.csv").is_file():
        pytest.fail(f"shared dataset missing: {FACES_DEV} (expected beside the repository as ../shared/datasets)")
    return FACES_DEV


@pytest.fixture(scope="session")
def crowd_photo() -> Path:
    if not CROWD.is_file():
        pytest.fail(f"shared dataset missing: {CROWD}")
    return CROWD


@pytest.fixture(scope="session")
def engine():
    from facesearch.engine.engine import FaceEngine

    return FaceEngine()
