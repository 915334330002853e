"""Models are only ever loaded when their sha256 matches the pinned value; otherwise the error says what to do."""

from __future__ import annotations

import pytest

from facesearch.errors import ModelUnavailableError
from facesearch.models import registry


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESEARCH_MODEL_DIR", str(tmp_path))
    registry.model_path.cache_clear()
    yield tmp_path
    registry.model_path.cache_clear()


def test_every_source_and_artifact_is_pinned():
    assert all(len(sha) == 64 for _, sha in registry.SOURCES.values())
    assert all(len(sha) == 64 for sha in registry.ARTIFACTS.values())


def test_missing_model_names_the_build_command(model_dir):
    with pytest.raises(ModelUnavailableError, match="facesearch models build"):
        registry.model_path("pnet.onnx")


def test_corrupt_model_is_refused(model_dir):
    (model_dir / "pnet.onnx").write_bytes(b"not the graph we pinned")
    with pytest.raises(ModelUnavailableError, match="corrupt"):
        registry.model_path("pnet.onnx")


def test_unknown_model_is_refused(model_dir):
    with pytest.raises(ModelUnavailableError, match="unknown model"):
        registry.model_path("yolo.onnx")


def test_the_built_models_verify():
    registry.model_path.cache_clear()
    for name in registry.ARTIFACTS:
        assert registry.model_path(name).is_file()
