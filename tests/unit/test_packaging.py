"""The dependency sets match how facesearch is deployed: a lean runtime, the rest in extras."""

from __future__ import annotations

import ast
import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest

from facesearch.errors import ModelUnavailableError
from facesearch.models import registry

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def _names(requirements: list[str]) -> set[str]:
    """Distribution names (lower case, no versions or extras) of requirement strings."""
    out = set()
    for req in requirements:
        name = req.split(";")[0].split("[")[0]
        for sep in "<>=!~ ":
            name = name.split(sep)[0]
        out.add(name.strip().lower())
    return out


def test_license_is_an_spdx_string_which_needs_setuptools_77():
    assert PROJECT["license"] == "Apache-2.0"
    assert "setuptools>=77" in PYPROJECT["build-system"]["requires"]


def test_the_base_is_the_engine_and_the_settings_only():
    base = _names(PROJECT["dependencies"])
    assert {"numpy", "onnxruntime", "pillow", "pydantic-settings"} <= base
    assert not base & {"onnx", "faiss-cpu", "boto3", "tqdm", "opensearch-py", "pytest", "dlib-bin", "psutil"}
    assert "opencv-python-headless" not in base  # 160 MB; the engine has a numpy port (engine/imageops.py)


def test_lambda_extra_is_the_opensearch_store_and_powertools_without_build_or_test_tools():
    extras = PROJECT["optional-dependencies"]
    assert {"lambda", "embedded", "cli", "dev", "models", "opencv"} <= set(extras)
    lam = _names(extras["lambda"])
    assert lam == {"opensearch-py", "aws-lambda-powertools", "python-dateutil"}
    assert "faiss-cpu" in _names(extras["embedded"]) and "onnx" in _names(extras["models"])
    assert (
        _names(extras["opencv"]) == {"opencv-python-headless"} and "facesearch[embedded,models,opencv]" in extras["cli"]
    )


def test_dev_installs_every_extra_and_the_test_tools():
    dev = PROJECT["optional-dependencies"]["dev"]
    (self_ref,) = [r for r in dev if r.startswith("facesearch[")]
    assert {"lambda", "embedded", "models", "opencv", "cli"} <= set(self_ref[len("facesearch[") : -1].split(","))
    assert {"pytest", "ruff", "dlib-bin"} <= _names(dev)
    assert "'.[dev]'" in (REPO / "scripts" / "setup.sh").read_text()


def test_the_engine_imports_opencv_in_one_place_and_only_optionally():
    for path in (REPO / "src" / "facesearch" / "engine").glob("*.py"):
        text = path.read_text()
        if path.name == "imageops.py":
            assert "try:  # optional" in text and "except ImportError" in text
        else:
            assert "import cv2" not in text, path.name


def test_no_runtime_module_imports_onnx():
    """onnx is a build tool: the engine, the stores and the service must run with onnxruntime alone."""
    offenders = []
    for path in (REPO / "src" / "facesearch").rglob("*.py"):
        if path.parent.name in ("models", "cli", "devtools"):
            continue  # the model build (and the commands that run it) may import it lazily
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n == "onnx" or n.startswith("onnx.")]
    assert offenders == []


def test_runtime_models_are_the_rewritten_graphs_and_the_resnet():
    assert set(registry.RUNTIME_MODELS) <= set(registry.ARTIFACTS)
    assert set(registry.RUNTIME_MODELS) == {"pnet_fast.onnx", "rnet_fast.onnx", "onet_fast.onnx", "dlib_resnet_v1.onnx"}


def test_building_models_without_onnx_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    for mod in ("facesearch.models.dlib_convert", "facesearch.models.prelu"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    from facesearch.models.build import build_all

    with pytest.raises(ModelUnavailableError, match=r"facesearch\[models\]"):
        build_all()


def _load_lambda_size():
    spec = importlib.util.spec_from_file_location("lambda_size", REPO / "scripts" / "lambda_size.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lambda_size_counts_each_file_once_per_distribution_and_reports_the_rest(tmp_path):
    site = tmp_path / "python"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "a.so").write_bytes(b"x" * 1000)
    (site / "pkg" / "b.py").write_bytes(b"y" * 10)
    info = site / "pkg-1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text("pkg/a.so,sha256=,1000\npkg/b.py,,\npkg/b.py,,\npkg-1.0.dist-info/RECORD,,\n")
    (site / "stray.txt").write_bytes(b"z" * 5)
    sizes = _load_lambda_size().sizes_by_distribution(site)
    record_size = (info / "RECORD").stat().st_size
    assert sizes == {"pkg": 1010 + record_size, "(unclaimed)": 5}
