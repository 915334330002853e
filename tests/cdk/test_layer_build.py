"""layers/build.py without the network: what it packs, when it rebuilds, the size limit, the model checks.

The pip step itself (manylinux wheels from PyPI) runs in `npx cdk synth`, not here.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
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


def test_the_runtime_layer_ships_hash_checked_bytecode_for_lambdas_read_only_opt(
    build: ModuleType, tmp_path: Path
) -> None:
    target = tmp_path / "python"
    for relative in ("pkg/__init__.py", "pkg/tests/test_x.py", "sympy/core.py", "mod.py", "broken.py"):
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (target / relative).write_text("VALUE = 42\n" if relative != "broken.py" else "print 'python 2'\n")
    build.compile_bytecode(target)

    def pyc(relative: str) -> Path:
        return Path(importlib.util.cache_from_source(str(target / relative)))

    assert pyc("pkg/__init__.py").is_file() and pyc("mod.py").is_file()
    # never imported by the functions: no bytecode (sympy's alone would add ~50 MB); a py2 file is skipped quietly
    assert not pyc("pkg/tests/test_x.py").exists() and not pyc("sympy/core.py").exists()
    assert not pyc("broken.py").exists()
    flags = int.from_bytes(pyc("mod.py").read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, unchecked: valid whatever mtime the unzipped source gets
    # Used as shipped: a read-only layer (no new bytecode written) imports the module from it.
    (target / "mod.py").write_text("VALUE = 'source changed after the build'\n")
    code = "import mod; print(mod.VALUE)"
    env = {"PYTHONPATH": str(target), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "42"


def test_bytecode_for_lambda_is_compiled_only_by_its_python_version(
    build: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(build, "PYTHON_VERSION", "3.99")
    with pytest.raises(SystemExit, match=r"must be compiled by Python 3\.99"):
        build.compile_bytecode(tmp_path)
