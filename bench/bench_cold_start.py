"""Cold start of a facesearch Lambda function, measured here: import + model load + first inference, each in a
fresh Python process (as a new Lambda container would be), plus an estimate of the unzipped bundle.

Each run starts ``python -c`` in a new process that:

1. imports ``functions/api/app.py`` — Powertools (with the X-Ray SDK), boto3 clients, settings, the service with
   the OpenSearch store as deployed (``cold_start``), i.e. everything Lambda's init phase runs; models do not
   load yet;
2. loads the ONNX models (``LazyEngine.get()``: MTCNN's three nets and the dlib ResNet);
3. runs the first inference: DetectFaces + SearchFacesByImage-free ``analyze`` on a 640 px one-face photo.

Lambda's own runtime start (before Python runs our code) is not included; the interpreter start is reported
separately (``python_start_ms``: a bare ``python -c pass``). ``--runs`` fresh processes; medians reported.

The bundle estimate sums the installed files of the ``lambda`` extra's distributions and their dependencies
(boto3/botocore excluded: the Lambda Python runtime ships them), the ``facesearch`` package and the model files,
against Lambda's 250 MB unzipped limit (function + layers).

    .venv/bin/python bench/bench_cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FACES_DEV = Path(os.environ.get("FACESEARCH_DATASETS", REPO.parent / "shared" / "datasets")) / "faces-dev"
LAMBDA_DISTRIBUTIONS = [
    "onnxruntime",
    "numpy",
    "pillow",
    "pydantic-settings",
    "opensearch-py",
    "aws-lambda-powertools",
    "aws-xray-sdk",
]
PROVIDED_BY_LAMBDA = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}

CHILD = r"""
import io, json, sys, time, importlib.util
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("api_app", sys.argv[1])
app = importlib.util.module_from_spec(spec); spec.loader.exec_module(app)
t1 = time.perf_counter()
engine = app.runtime.service.engine.get()
t2 = time.perf_counter()
from PIL import Image
image = Image.open(sys.argv[2]).convert("RGB"); image.thumbnail((640, 640))
buffer = io.BytesIO(); image.save(buffer, "JPEG", quality=90)
faces = app.runtime.service.detect_faces(Image={"Bytes": buffer.getvalue()})["FaceDetails"]
t3 = time.perf_counter()
assert len(faces) == 1, faces
ms = {"import_ms": t1 - t0, "model_load_ms": t2 - t1, "first_inference_ms": t3 - t2}
print(json.dumps({k: v * 1e3 for k, v in ms.items()}))
"""


def one_run(home: Path) -> dict[str, float]:
    env = {
        **os.environ,
        "FACESEARCH_HOME": str(home),
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "POWERTOOLS_SERVICE_NAME": "facesearch",
        "POWERTOOLS_TRACE_DISABLED": "true",
        # As deployed: the OpenSearch store (its client connects on first use, so no server is needed here).
        "FACESEARCH_BACKEND": "opensearch",
        "FACESEARCH_OPENSEARCH_URL": "http://127.0.0.1:9",
    }
    start = time.perf_counter()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(REPO / "functions" / "api" / "app.py"),
            str(FACES_DEV / "images" / "img1.jpg"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_total_ms"] = (time.perf_counter() - start) * 1e3
    result["cold_start_ms"] = result["import_ms"] + result["model_load_ms"] + result["first_inference_ms"]
    return result


def python_start_ms() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter() - start) * 1e3


def _name(requirement: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def bundle_bytes() -> dict[str, int]:
    seen: dict[str, int] = {}
    todo = list(LAMBDA_DISTRIBUTIONS)
    while todo:
        name = todo.pop()
        if name in seen or name in PROVIDED_BY_LAMBDA:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = sum(
            Path(dist.locate_file(f)).stat().st_size for f in dist.files or [] if Path(dist.locate_file(f)).is_file()
        )
        todo += [_name(r) for r in dist.requires or [] if "extra ==" not in r]
    src = REPO / "src" / "facesearch"
    seen["facesearch (src, no devtools)"] = sum(
        p.stat().st_size for p in src.rglob("*.py") if "devtools" not in p.parts
    )
    models = Path(os.environ.get("FACESEARCH_MODEL_DIR", Path.home() / ".cache" / "facesearch" / "models"))
    seen["models (*.onnx)"] = sum(p.stat().st_size for p in models.glob("*.onnx"))
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    load_start = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory() as home:
        one_run(Path(home))  # page cache warm, as on a Lambda host that has run the image before
        for _ in range(args.runs):
            runs.append(one_run(Path(home)))
    start_ms = statistics.median(python_start_ms() for _ in range(3))
    keys = ("import_ms", "model_load_ms", "first_inference_ms", "cold_start_ms", "process_total_ms")
    medians = {k: round(statistics.median(r[k] for r in runs), 1) for k in keys}
    sizes = bundle_bytes()
    total = sum(sizes.values())
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_avg_start": load_start,
        "load_avg_end": os.getloadavg(),
        "python_start_ms": round(start_ms, 1),
        "median": medians,
        "runs": runs,
        "bundle_bytes": sizes,
        "bundle_total_mb": round(total / 1e6, 1),
    }
    out = REPO / "bench" / "results" / f"cold-start-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("| stage | median ms |\n|---|---|")
    for k in keys:
        print(f"| {k} | {medians[k]} |")
    print(f"| python_start_ms (bare interpreter) | {report['python_start_ms']} |")
    print(f"\nbundle estimate: {report['bundle_total_mb']} MB unzipped (limit 250 MB)")
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"  {name}: {size / 1e6:.1f} MB")
    print(f"load average {load_start} -> {report['load_avg_end']}; JSON: {out}")


if __name__ == "__main__":
    main()
