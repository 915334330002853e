"""Build the two Lambda layers the CDK app deploys, reproducibly and without Docker.

    layers/build/runtime/python/   facesearch + the `lambda` extra, manylinux wheels for the target CPU (/opt/python)
    layers/build/models/models/    the ONNX models, copied from the model cache and verified by sha256 (/opt/models)

Usage: `.venv/bin/python layers/build.py [--arch arm64|x86_64] [--force]`. The CDK app calls `ensure_layers`, which
rebuilds only when the inputs changed (a stamp of the inputs' hashes sits next to each build).

Why `pip install --platform ... --only-binary=:all:`: the host is x86_64 Debian, Lambda is Amazon Linux 2 (glibc
2.26) on arm64 or x86_64; asking pip for manylinux2014 wheels of the target CPU gives exactly what Lambda can load,
with nothing compiled here. Only PyPI is contacted (a package registry); the models come from the local cache.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "layers" / "build"
PYTHON_VERSION = "3.11"  # the Lambda runtime in cdk/ (PYTHON_3_11)
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # function code + all layers, unzipped
# Shipped in every Lambda Python runtime (the SDK the functions call AWS with) and large (botocore ~25 MB): never
# packed even if a dependency drags them in. A local executor must provide them the same way. (jmespath is kept:
# Powertools imports it at module level and it is 100 KB.)
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")
# What Lambda's python3.11 runtime (Amazon Linux 2, glibc 2.26) can load: onnxruntime >= 1.17 publishes only
# manylinux_2_27+ wheels, so the layer gets 1.16.x, which is built against the numpy 1.x ABI (with numpy 2 it
# fails at import: "numpy.core.multiarray failed to import").
LAMBDA_PLATFORM_PINS = ("onnxruntime<1.17", "numpy<2")
# Not compiled to bytecode: top-level packages the functions never import (sympy and mpmath come with onnxruntime
# for its tools; their bytecode alone would add ~50 MB) and test directories.
NOT_COMPILED = {"sympy", "mpmath", "isympy.py"}
NOT_COMPILED_DIRS = {"tests", "test"}


def lambda_requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """The core dependencies plus the `lambda` extra: what the functions import (engine, service, OpenSearch
    store, AWS adapters) and nothing else (no OpenCV, onnx, faiss, CLI or test tools)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project.get("optional-dependencies", {})
    if "lambda" not in extras:
        raise SystemExit("pyproject.toml has no `lambda` extra: the runtime layer packs exactly that extra")
    return list(project.get("dependencies", [])) + list(extras["lambda"])


def _tree_hash(root: Path, pattern: str = "*") -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob(pattern) if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def runtime_inputs(architecture: str) -> dict[str, str]:
    """Everything the runtime layer is a function of; a change in any of them means rebuild."""
    return {
        "architecture": architecture,
        "python": PYTHON_VERSION,
        "requirements": json.dumps(lambda_requirements()),
        "constraints": _file_hash(_constraints_file(architecture)),
        "platform_pins": json.dumps(LAMBDA_PLATFORM_PINS),
        "source": _tree_hash(REPO / "src" / "facesearch"),
        "builder": _file_hash(Path(__file__)),
    }


def models_inputs() -> dict[str, str]:
    from facesearch.models.registry import ARTIFACTS, RUNTIME_MODELS

    shipped = {name: ARTIFACTS[name] for name in RUNTIME_MODELS}
    return {"artifacts": json.dumps(shipped, sort_keys=True), "builder": _file_hash(Path(__file__))}


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "-"


def _constraints_file(architecture: str) -> Path:
    """Optional pins (`pip freeze` of a known-good layer) that make a rebuild byte-for-byte the same versions."""
    return REPO / "layers" / f"constraints-{architecture}.txt"


def _stamp_ok(directory: Path, inputs: dict[str, str]) -> bool:
    stamp = directory / ".inputs.json"
    return stamp.is_file() and json.loads(stamp.read_text()) == inputs


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "--quiet", *args]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)  # quiet unless it fails
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"layers: pip failed ({done.returncode}): {' '.join(cmd)}")


def build_runtime(architecture: str, out: Path) -> None:
    """facesearch (pure Python) + the `lambda` extra's wheels for `architecture`, into out/python."""
    with tempfile.TemporaryDirectory(prefix="facesearch-layer-", dir=out.parent) as tmp:
        target = Path(tmp) / "python"
        pins = _constraints_file(architecture)
        platform_pins = Path(tmp) / "platform-constraints.txt"
        platform_pins.write_text("\n".join(LAMBDA_PLATFORM_PINS) + "\n")
        _pip(
            "--target", str(target),
            "--platform", PLATFORMS[architecture],
            "--implementation", "cp",
            "--python-version", PYTHON_VERSION,
            "--only-binary=:all:",
            "--constraint", str(platform_pins),
            *(["--constraint", str(pins)] if pins.is_file() else []),
            *lambda_requirements(),
        )  # fmt: skip
        # Our own package without its base dependencies (those serve the CLI, not the functions).
        _pip("--target", str(target), "--no-deps", "--no-compile", str(REPO))
        for name in PROVIDED_BY_RUNTIME:
            for path in target.glob(f"{name}*"):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        for cache in list(target.rglob("__pycache__")):
            shutil.rmtree(cache)
        for stray in ("bin",):  # console scripts pip writes for the host interpreter: useless in a layer
            shutil.rmtree(target / stray, ignore_errors=True)
        compile_bytecode(target)
        platform_pins.unlink()
        _write_manifest(Path(tmp), target, architecture)
        _replace(Path(tmp), out)


def compile_bytecode(target: Path) -> None:
    """Write the ``__pycache__/*.cpython-311.pyc`` of every module the functions may import.

    Lambda mounts layers read-only, so Python cannot cache bytecode there: without these files every cold start
    compiles every imported module from source again (measured: the api function's import took about twice as
    long; BENCHMARKS.md, "Cold start"). ``unchecked-hash`` pycs are used whatever mtimes the sources get when
    Lambda unzips the layer (a timestamp pyc whose source mtime differs is silently recompiled in memory).
    The bytecode format is per Python minor version, so this must run on the runtime's Python (3.11).
    """
    if f"{sys.version_info.major}.{sys.version_info.minor}" != PYTHON_VERSION:
        raise SystemExit(
            f"layers: bytecode for Lambda's python{PYTHON_VERSION} must be compiled by Python {PYTHON_VERSION}, "
            f"this is {sys.version.split()[0]}; run layers/build.py with the project's .venv/bin/python"
        )
    for source in sorted(target.rglob("*.py")):
        parts = source.relative_to(target).parts
        if parts[0] in NOT_COMPILED or NOT_COMPILED_DIRS.intersection(parts[:-1]):
            continue
        py_compile.compile(
            str(source),
            cfile=importlib.util.cache_from_source(str(source)),
            dfile=str(source.relative_to(target)),
            doraise=False,
            quiet=2,  # a few packages ship files that do not compile (py2 examples): they were never importable
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )


def build_models(out: Path) -> None:
    """The ONNX files the engine loads (``RUNTIME_MODELS``: the PReLU-rewritten MTCNN graphs and the embedder, not
    the build's intermediate graphs), each verified against its pinned sha256 before and after the copy."""
    from facesearch.models.registry import ARTIFACTS, RUNTIME_MODELS, model_path, sha256_file

    with tempfile.TemporaryDirectory(prefix="facesearch-models-", dir=out.parent) as tmp:
        target = Path(tmp) / "models"
        target.mkdir()
        for name in sorted(RUNTIME_MODELS):
            expected = ARTIFACTS[name]
            source = model_path(name)  # refuses a missing or altered file, naming the rebuild command
            shutil.copyfile(source, target / name)
            if sha256_file(target / name) != expected:
                raise SystemExit(f"copy of {name} does not match its pinned sha256; disk problem?")
        _replace(Path(tmp), out)


def _write_manifest(root: Path, target: Path, architecture: str) -> None:
    versions = sorted(p.name.removesuffix(".dist-info") for p in target.glob("*.dist-info"))
    (root / "manifest.json").write_text(
        json.dumps({"architecture": architecture, "python": PYTHON_VERSION, "packages": versions}, indent=1) + "\n"
    )


def _replace(built: Path, out: Path) -> None:
    """Swap the new build in whole, so an interrupted build never leaves a half layer behind."""
    staged = out.with_name(out.name + ".new")
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(built, staged, symlinks=True)
    shutil.rmtree(out, ignore_errors=True)
    staged.rename(out)


def freeze(architecture: str, runtime_dir: Path) -> Path:
    """Pin the versions of a known-good build, so the next build (CI, a colleague) resolves the same wheels."""
    manifest = json.loads((Path(runtime_dir) / "manifest.json").read_text())
    lines = []
    for dist in manifest["packages"]:
        name, _, version = dist.rpartition("-")
        if name != "facesearch":
            lines.append(f"{name.replace('_', '-').lower()}=={version}")
    path = _constraints_file(architecture)
    path.write_text(
        f"# Versions of a built {architecture} runtime layer (python {PYTHON_VERSION}, {PLATFORMS[architecture]}).\n"
        "# Regenerate after changing the `lambda` extra: layers/build.py --arch ARCH --force --freeze\n"
        + "\n".join(sorted(lines))
        + "\n"
    )
    return path


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def ensure_layers(*, architecture: str, runtime_dir: Path = BUILD / "runtime", models_dir: Path = BUILD / "models",
                  force: bool = False, strict: bool = True) -> dict[str, int]:  # fmt: skip
    """Build whichever layer is missing or stale; return the unzipped sizes in bytes.

    strict: over Lambda's 250 MiB (code + layers, unzipped) is an error, since AWS would reject the deploy;
    otherwise a warning (a local cloud that runs handlers as host processes has no such limit).
    """
    runtime_dir, models_dir = Path(runtime_dir), Path(models_dir)
    runtime_dir.parent.mkdir(parents=True, exist_ok=True)
    models_dir.parent.mkdir(parents=True, exist_ok=True)
    wanted = runtime_inputs(architecture)
    if force or not _stamp_ok(runtime_dir, wanted):
        print(f"layers: building the runtime layer for {architecture} into {runtime_dir}", file=sys.stderr)
        build_runtime(architecture, runtime_dir)
        (runtime_dir / ".inputs.json").write_text(json.dumps(wanted, indent=1))
    wanted_models = models_inputs()
    if force or not _stamp_ok(models_dir, wanted_models):
        print(f"layers: copying and verifying the models into {models_dir}", file=sys.stderr)
        build_models(models_dir)
        (models_dir / ".inputs.json").write_text(json.dumps(wanted_models, indent=1))
    sizes = {"runtime": tree_size(runtime_dir / "python"), "models": tree_size(models_dir / "models")}
    total = sum(sizes.values())
    if total > LAMBDA_UNZIPPED_LIMIT:
        message = f"layers: {total / 2**20:.1f} MiB unzipped exceeds Lambda's 250 MiB for code + layers"
        if strict:
            raise SystemExit(message)
        print(f"WARNING: {message}", file=sys.stderr)
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default=os.environ.get("FACESEARCH_LAMBDA_ARCH", "arm64"))
    parser.add_argument("--out", type=Path, default=BUILD)
    parser.add_argument("--force", action="store_true", help="rebuild even if the inputs did not change")
    parser.add_argument("--no-strict", dest="strict", action="store_false", help="only warn above 250 MiB")
    parser.add_argument("--freeze", action="store_true", help=f"write {_constraints_file('ARCH').name} from the build")
    args = parser.parse_args(argv)
    sizes = ensure_layers(
        architecture=args.arch,
        runtime_dir=args.out / "runtime",
        models_dir=args.out / "models",
        force=args.force,
        strict=args.strict,
    )
    if args.freeze:
        print(f"pinned the build's versions in {freeze(args.arch, args.out / 'runtime')}")
    total = sum(sizes.values())
    for name, size in sizes.items():
        print(f"{name:8s} {size / 2**20:7.1f} MiB unzipped")
    print(f"{'total':8s} {total / 2**20:7.1f} MiB of Lambda's 250 MiB (function code adds a few KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
