"""Cold start of a Lambda function (default: api) as deployed — the built runtime + models layers on Lambda's
Python 3.11 — side by side with a baseline: the same measurement of another git ref's layers and handler (``main``).

Each run is a fresh process (a new Lambda container) that:

1. imports ``functions/<function>/app.py`` with the layer on ``sys.path``: Powertools, the Tracer, settings, boto3
   clients, the service on the OpenSearch store as deployed (it connects on first use: no server needed); this is
   Lambda's init phase, models not loaded yet;
2. loads the ONNX models (``LazyEngine.get()``: MTCNN's three nets and the dlib ResNet) from the models layer;
3. runs the first inference: the engine's whole analysis of a 640 px one-face photo (decode, MTCNN, alignment, the
   ResNet descriptor: the model work of SearchFacesByImage and IndexFaces, without the store and audit calls, which
   need the network); then a second one, for reference.

Cold start = 1 + 2 + 3 (init + first invocation), wall clock and CPU time of the process. The CPU time is what an
idle core would take; on this shared 2-core machine the wall clock carries the other helpers' load (recorded).

As on Lambda: layers are read-only there, so Python cannot cache bytecode — runs use ``PYTHONDONTWRITEBYTECODE=1``
and whatever ``.pyc`` the layer ships; ``FACESEARCH_THREADS=1`` (what the CDK sets for 2048 MB); the interpreter is
the local cloud's boto3-only Python 3.11 (``~/.cache/facesearch/localstack/lambda-python3.11``, from
``./scripts/setup_localcloud.sh``; boto3 comes with Lambda's runtime, not the layer) when present. Tracing is
measured both ways: ``on`` as in AWS (``LAMBDA_TASK_ROOT`` set, active tracing: the X-Ray SDK loads and patches) and
``off`` (``POWERTOOLS_TRACE_DISABLED=true``, as the tests and emulators run). Two more variants, ``baseline, cached
bytecode``, run the baseline with a writable bytecode cache (``PYTHONPYCACHEPREFIX``): how a dev-machine measurement
of it looks (BENCHMARKS.md's earlier numbers), not how it runs on Lambda; they separate the bytecode's share of the
gain from the rest.

The variants alternate run by run (baseline, candidate, baseline, ...) so load changes hit them alike. Lambda's
own runtime start (bootstrap, before our code) is not included; ``python_start_ms`` is a bare interpreter start.

    .venv/bin/python bench/bench_cold_start.py [--runs 7] [--baseline main] [--function api|index_faces|search_faces]

Layers: the candidate's are ``layers/build.py``'s build of this tree (rebuilt if stale); the baseline's are built
from ``git archive <ref>`` by that ref's own ``layers/build.py`` into ``~/.cache/facesearch/bench/cold-start/``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FACES_DEV = Path(os.environ.get("FACESEARCH_DATASETS", REPO.parent / "shared" / "datasets")) / "faces-dev"
CACHE = Path.home() / ".cache" / "facesearch" / "bench" / "cold-start"
LAMBDA_PYTHON = Path.home() / ".cache" / "facesearch" / "localstack" / "lambda-python3.11" / "bin" / "python"
ARCH = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]

CHILD = r"""
import io, json, sys, time, importlib.util
c0, t0 = time.process_time(), time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
app = importlib.util.module_from_spec(spec); sys.modules["app"] = app; spec.loader.exec_module(app)
c1, t1 = time.process_time(), time.perf_counter()
app.runtime.service.engine.get()
c2, t2 = time.process_time(), time.perf_counter()
from PIL import Image
image = Image.open(sys.argv[2]).convert("RGB"); image.thumbnail((640, 640))
buffer = io.BytesIO(); image.save(buffer, "JPEG", quality=90)
c2b, t2b = time.process_time(), time.perf_counter()  # preparing the test photo is not the function's work
faces = app.runtime.service.engine.analyze(buffer.getvalue()).faces
c3, t3 = time.process_time(), time.perf_counter()
app.runtime.service.engine.analyze(buffer.getvalue())
c4, t4 = time.process_time(), time.perf_counter()
assert len(faces) == 1 and faces[0].descriptor is not None, faces
wall = {"import_ms": t1 - t0, "model_load_ms": t2 - t1, "first_inference_ms": t3 - t2b, "second_inference_ms": t4 - t3}
wall["cold_start_ms"] = wall["import_ms"] + wall["model_load_ms"] + wall["first_inference_ms"]
cpu = {"import_cpu_ms": c1 - c0, "model_load_cpu_ms": c2 - c1, "first_inference_cpu_ms": c3 - c2b}
cpu["cold_start_cpu_ms"] = sum(cpu.values())
tracer = type(app.tracer.provider).__module__
print(json.dumps({**{k: round(v * 1e3, 1) for k, v in {**wall, **cpu}.items()}, "tracer": tracer}))
"""

KEYS = (
    "cold_start_ms",
    "import_ms",
    "model_load_ms",
    "first_inference_ms",
    "cold_start_cpu_ms",
    "import_cpu_ms",
    "model_load_cpu_ms",
    "first_inference_cpu_ms",
    "second_inference_ms",
)


FUNCTIONS = ("api", "index_faces", "search_faces")  # match_frames: the video consumer, measured in bench_video


@dataclass(frozen=True)
class Tree:
    """A source tree with its built layers: where the handler and the layers of one side of the comparison are."""

    name: str
    root: Path
    layers: Path
    function: str = "api"

    @property
    def runtime(self) -> Path:
        return self.layers / "runtime" / "python"

    @property
    def models(self) -> Path:
        return self.layers / "models" / "models"

    @property
    def handler(self) -> Path:
        return self.root / "functions" / self.function / "app.py"


@dataclass(frozen=True)
class Variant:
    label: str
    tree: Tree
    tracing: bool
    pycache: Path | None = None  # a writable bytecode cache (not Lambda: its layers are read-only)


def candidate_tree(function: str) -> Tree:
    spec = importlib.util.spec_from_file_location("layers_build", REPO / "layers" / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    build.ensure_layers(architecture=ARCH, strict=False)
    return Tree("candidate", REPO, REPO / "layers" / "build", function)


def baseline_tree(ref: str, function: str) -> Tree:
    """``ref``'s files (``git archive``) with layers built by its own builder; cached per commit."""
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", ref], check=True, capture_output=True, text=True)
    commit = sha.stdout.strip()
    root = CACHE / commit[:12]
    if not (root / "layers" / "build.py").is_file():
        for old in sorted(CACHE.glob("*"), key=lambda p: p.stat().st_mtime)[:-2]:  # ~200 MB each: keep the last two
            shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    out = root / "layers" / "build"
    build = [sys.executable, str(root / "layers" / "build.py"), "--arch", ARCH, "--out", str(out), "--no-strict"]
    subprocess.run(build, cwd=root, check=True, stdout=subprocess.DEVNULL)
    return Tree(f"baseline ({ref} {commit[:8]})", root, out, function)


def one_run(variant: Variant, python: Path, photo: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(Path.home()),
            "LANG": "C.UTF-8",
            "FACESEARCH_HOME": home,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_LAMBDA_FUNCTION_NAME": f"facesearch-{variant.tree.function}",  # as Lambda sets it
            # What the S3-fed functions require (their cold start checks them; nothing is called at init).
            "FACESEARCH_RESULTS_BUCKET": "results",
            "FACESEARCH_IDEMPOTENCY_TABLE": "idempotency",
            "FACESEARCH_EVENT_BUS": "events",
            "POWERTOOLS_SERVICE_NAME": "facesearch",
            "POWERTOOLS_METRICS_NAMESPACE": "facesearch",
            # As deployed: the OpenSearch store (its client connects on first use, so no server is needed here).
            "FACESEARCH_BACKEND": "opensearch",
            "FACESEARCH_OPENSEARCH_URL": "http://127.0.0.1:9",
            "FACESEARCH_MODEL_DIR": str(variant.tree.models),
            "FACESEARCH_THREADS": "1",  # the CDK's value for 2048 MB (cdk/facesearch_cdk/config.py)
            "PYTHONPATH": os.pathsep.join([str(variant.tree.runtime), str(variant.tree.handler.parent)]),
        }
        if variant.pycache is None:
            env["PYTHONDONTWRITEBYTECODE"] = "1"  # Lambda's /opt is read-only: no bytecode is cached there
        else:
            env["PYTHONPYCACHEPREFIX"] = str(variant.pycache)
        if variant.tracing:  # Lambda with active tracing; no segment exists outside an invocation
            env |= {"LAMBDA_TASK_ROOT": str(variant.tree.handler.parent), "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR"}
        else:
            env["POWERTOOLS_TRACE_DISABLED"] = "true"
        done = subprocess.run(
            [str(python), "-c", CHILD, str(variant.tree.handler), str(photo)],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
        )
    if done.returncode != 0:
        raise SystemExit(f"{variant.label}: the cold-start process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def prime_runtime(python: Path) -> None:
    """Lambda's runtime ships its boto3/botocore with their bytecode: compile the interpreter's own site-packages
    (boto3 and its dependencies) once, so neither side pays for compiling those."""
    where = "import boto3, os; print(os.path.dirname(os.path.dirname(boto3.__file__)))"
    site = subprocess.run([str(python), "-c", where], check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run([str(python), "-m", "compileall", "-q", site], check=False, stdout=subprocess.DEVNULL)


def python_start_ms(python: Path) -> float:
    start = time.perf_counter()
    subprocess.run([str(python), "-c", "pass"], check=True)
    return (time.perf_counter() - start) * 1e3


def tree_mib(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


def summary(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        k: {
            "median": round(statistics.median(r[k] for r in runs), 1),
            "min": min(r[k] for r in runs),
            "max": max(r[k] for r in runs),
        }
        for k in KEYS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per variant (after one warm-up each)")
    parser.add_argument("--baseline", default="main", help="git ref whose layers and handler are the baseline")
    parser.add_argument("--function", choices=FUNCTIONS, default="api")
    default_python = LAMBDA_PYTHON if LAMBDA_PYTHON.exists() else Path(sys.executable)
    parser.add_argument("--python", type=Path, default=default_python, help="the interpreter standing in for Lambda's")
    args = parser.parse_args()
    photo = FACES_DEV / "images" / "img1.jpg"
    baseline, candidate = baseline_tree(args.baseline, args.function), candidate_tree(args.function)
    prime_runtime(args.python)
    with tempfile.TemporaryDirectory(prefix="facesearch-pycache-") as pycache:
        variants = [
            v
            for tracing in (True, False)
            for v in (
                Variant(f"{baseline.name}, tracing {'on' if tracing else 'off'}", baseline, tracing),
                Variant(f"{candidate.name}, tracing {'on' if tracing else 'off'}", candidate, tracing),
            )
        ]
        for tracing in (True, False):
            label = f"{baseline.name}, tracing {'on' if tracing else 'off'}, cached bytecode"
            variants.append(Variant(label, baseline, tracing, Path(pycache)))
        load_start, started = os.getloadavg(), datetime.now(UTC)
        for variant in variants:  # page cache warm (a Lambda host that ran the image before); fills the pycache
            one_run(variant, args.python, photo)
        runs: dict[str, list[dict[str, float]]] = {v.label: [] for v in variants}
        loads = []
        for _ in range(args.runs):
            for variant in variants:
                runs[variant.label].append(one_run(variant, args.python, photo))
            loads.append(os.getloadavg()[0])
    stats = {label: summary(r) for label, r in runs.items()}
    ratios = {}
    for tracing in ("on", "off"):
        base, cand = stats[f"{baseline.name}, tracing {tracing}"], stats[f"{candidate.name}, tracing {tracing}"]
        ratios[f"tracing {tracing}"] = {
            k: round(cand[k]["median"] / base[k]["median"], 2) for k in ("cold_start_ms", "cold_start_cpu_ms")
        }
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "function": args.function,
        "time": started.isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": str(args.python),
        "load_avg_start": load_start,
        "load_avg_1min_during": [round(x, 2) for x in loads],
        "load_avg_end": os.getloadavg(),
        "python_start_ms": round(statistics.median(python_start_ms(args.python) for _ in range(3)), 1),
        "layers_mib": {
            t.name: {"runtime": tree_mib(t.runtime), "models": tree_mib(t.models)} for t in (baseline, candidate)
        },
        "stats": stats,
        "ratio_candidate_vs_baseline": ratios,
        "tracer_provider": {label: r[0]["tracer"] for label, r in runs.items()},
        "runs": runs,
    }
    out = REPO / "bench" / "results" / f"cold-start-{args.function}-{started:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    shown = ("cold_start_ms", "import_ms", "model_load_ms", "first_inference_ms", "cold_start_cpu_ms")
    print("| variant | " + " | ".join(shown) + " |")
    print("|---" * (len(shown) + 1) + "|")
    for label, s in stats.items():
        cells = [f"{s[k]['median']:.0f} ({s[k]['min']:.0f}–{s[k]['max']:.0f})" for k in shown]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"\ncandidate / baseline (medians): {ratios}")
    print(f"layers (MiB): {report['layers_mib']}; python start {report['python_start_ms']} ms")
    print(f"load average {load_start} -> {report['load_avg_end']} (1-min during: {report['load_avg_1min_during']})")
    print(f"JSON: {out}")


if __name__ == "__main__":
    main()
