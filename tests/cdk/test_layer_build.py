"""layers/build.py without the network: what it packs, when it rebuilds, the size limit, the model checks.

The pip step itself (manylinux wheels from PyPI) runs in `npx cdk synth`, not here.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def build(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("layers_build_under_test", REPO / "layers" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_builders(build: ModuleType, monkeypatch: pytest.MonkeyPatch, size: int = 10) -> dict[str, int]:
    calls = {"runtime": 0, "models": 0}

    def runtime(architecture: str, out: Path) -> None:
        calls["runtime"] += 1
        (out / "python").mkdir(parents=True, exist_ok=True)
        (out / "python" / "blob").write_bytes(b"x" * size)

    def models(out: Path) -> None:
        calls["models"] += 1
        (out / "models").mkdir(parents=True, exist_ok=True)
        (out / "models" / "m.onnx").write_bytes(b"m")

    monkeypatch.setattr(build, "build_runtime", runtime)
    monkeypatch.setattr(build, "build_models", models)
    return calls


def test_the_runtime_layer_packs_the_core_dependencies_and_the_lambda_extra(build: ModuleType, tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname="x"\ndependencies=["numpy>=1.26"]\n'
        '[project.optional-dependencies]\nlambda=["pillow"]\nopencv=["opencv-python-headless"]\n'
    )
    assert build.lambda_requirements(pyproject) == ["numpy>=1.26", "pillow"]
    pyproject.write_text('[project]\nname="x"\n')
    with pytest.raises(SystemExit, match="lambda"):
        build.lambda_requirements(pyproject)


def test_targets_lambda_python_311_on_amazon_linux_2(build: ModuleType) -> None:
    assert build.PLATFORMS == {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
    assert build.PYTHON_VERSION == "3.11"
    assert "numpy<2" in build.LAMBDA_PLATFORM_PINS and "onnxruntime<1.17" in build.LAMBDA_PLATFORM_PINS
    assert "botocore" in build.PROVIDED_BY_RUNTIME and "jmespath" not in build.PROVIDED_BY_RUNTIME


def test_builds_once_and_again_only_when_an_input_changes(
    build: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = fake_builders(build, monkeypatch)
    dirs = {"runtime_dir": tmp_path / "runtime", "models_dir": tmp_path / "models"}
    sizes = build.ensure_layers(architecture="arm64", **dirs)
    assert sizes == {"runtime": 10, "models": 1} and calls == {"runtime": 1, "models": 1}
    build.ensure_layers(architecture="arm64", **dirs)
    assert calls == {"runtime": 1, "models": 1}  # stamps match: nothing rebuilt
    build.ensure_layers(architecture="x86_64", **dirs)
    assert calls == {"runtime": 2, "models": 1}  # another CPU: new wheels, same models
    stamp = json.loads((tmp_path / "runtime" / ".inputs.json").read_text())
    assert stamp["architecture"] == "x86_64" and stamp["source"] == build._tree_hash(REPO / "src" / "facesearch")


def test_over_lambdas_250_mib_fails_unless_told_to_warn(
    build: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_builders(build, monkeypatch, size=100)
    monkeypatch.setattr(build, "LAMBDA_UNZIPPED_LIMIT", 50)
    dirs = {"runtime_dir": tmp_path / "runtime", "models_dir": tmp_path / "models"}
    with pytest.raises(SystemExit, match="exceeds Lambda's 250 MiB"):
        build.ensure_layers(architecture="arm64", **dirs)
    build.ensure_layers(architecture="arm64", strict=False, **dirs)
    assert "WARNING" in capsys.readouterr().err


def test_freeze_pins_every_dependency_but_our_own_package(
    build: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "manifest.json").write_text(
        json.dumps({"packages": ["facesearch-0.1.0", "numpy-1.26.4", "aws_lambda_powertools-3.37.0"]})
    )
    monkeypatch.setattr(build, "_constraints_file", lambda arch: tmp_path / f"constraints-{arch}.txt")
    pins = build.freeze("arm64", tmp_path).read_text().splitlines()
    assert [line for line in pins if not line.startswith("#")] == ["aws-lambda-powertools==3.37.0", "numpy==1.26.4"]


def test_a_model_that_differs_from_its_pin_is_refused(build: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:  # fmt: skip
    from facesearch.errors import ModelUnavailableError
    from facesearch.models import registry

    cache = tmp_path / "models"
    cache.mkdir()
    for name in registry.ARTIFACTS:
        (cache / name).write_bytes(b"not the pinned model")
    monkeypatch.setenv("FACESEARCH_MODEL_DIR", str(cache))
    registry.model_path.cache_clear()
    try:
        with pytest.raises(ModelUnavailableError, match="sha256"):
            build.build_models(tmp_path / "layer")
    finally:
        registry.model_path.cache_clear()
    assert not (tmp_path / "layer").exists()  # nothing half-built is left behind


def test_the_models_layer_holds_exactly_the_runtime_models_verified(build: ModuleType, tmp_path: Path) -> None:
    """Uses the real model cache that ./scripts/setup.sh builds (`facesearch models build`). The build's
    intermediate graphs (MTCNN before the PReLU rewrite) are not shipped."""
    from facesearch.models import registry

    registry.model_path.cache_clear()
    build.build_models(tmp_path / "models")
    layer = tmp_path / "models" / "models"
    assert sorted(p.name for p in layer.iterdir()) == sorted(registry.RUNTIME_MODELS)
    for name in registry.RUNTIME_MODELS:
        assert registry.sha256_file(layer / name) == registry.ARTIFACTS[name]
