"""Benchmark ``facesearch serve`` (HTTP, a stock boto3 client in a second process) against the same service called
in-process, side by side in one run: SearchFacesByImage with a 640 px one-face photo on a 10k-face collection.

Set-up (not timed): one embedded store is built — the faces of 16 faces-dev photos indexed by the real engine,
plus ``--faces`` synthetic descriptors (isotropic around a random centre, typical distance 0.9 between faces, like
two different people) — and copied, so the server and the in-process service each open their own copy. The query
is ``faces-dev/images/img1.jpg`` resized to 640 px on its longest side (JPEG q90, in memory), whose person is in
the gallery.

Timed: ``--rounds`` rounds, each first in-process (``--concurrency`` threads calling
``service.search_faces_by_image`` directly), then over HTTP (a client process with ``--concurrency`` threads, one
stock ``boto3.client("rekognition", endpoint_url=...)`` each, against ``facesearch serve --workers
--concurrency``). Both sides use the same engine thread count (``--threads``) and the same request count. The
modes alternate round by round so background load on a shared machine hits both alike; the load average at
start and end is recorded. Every loop has a fixed count.

    .venv/bin/python bench/bench_serve.py            # 3 rounds x 40 requests per mode, about 2-3 minutes on 2 cores
    .venv/bin/python bench/bench_serve.py --quick    # 1 round x 12 requests, 2k faces

Prints a markdown report; writes JSON to ``bench/results/serve-<UTC timestamp>[-quick].json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FACES_DEV = Path(os.environ.get("FACESEARCH_DATASETS", REPO.parent / "shared" / "datasets")) / "faces-dev"
COLLECTION = "bench"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDBENCH", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def query_image() -> bytes:
    from PIL import Image

    image = Image.open(FACES_DEV / "images" / "img1.jpg").convert("RGB")
    image.thumbnail((640, 640))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def percentiles(ms: list[float]) -> dict[str, float]:
    import numpy as np

    return {f"p{p}": round(float(np.percentile(ms, p)), 1) for p in (50, 95, 99)}


# ------------------------------------------------------------------------------------------------ client process
def client_main(args: argparse.Namespace) -> None:
    """Runs in the second process: ``--requests`` SearchFacesByImage calls from ``--concurrency`` threads."""
    import boto3
    from botocore.config import Config

    image = Path(args.client_image).read_bytes()
    config = Config(retries={"max_attempts": 1}, max_pool_connections=args.concurrency, read_timeout=120)
    clients = [
        boto3.client("rekognition", endpoint_url=args.client, region_name="us-east-1", config=config)
        for _ in range(args.concurrency)
    ]

    def one(n: int) -> float:
        start = time.perf_counter()
        out = clients[n % len(clients)].search_faces_by_image(CollectionId=COLLECTION, Image={"Bytes": image})
        assert out["FaceMatches"], "the query's person is in the gallery"
        return (time.perf_counter() - start) * 1000

    wall, latencies = timed_round(one, args.requests, args.concurrency)
    print(json.dumps({"wall_s": wall, "latencies_ms": latencies}))


def timed_round(call: Any, requests: int, concurrency: int) -> tuple[float, list[float]]:
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(call, range(requests)))
    return time.perf_counter() - start, latencies


# ---------------------------------------------------------------------------------------------------- set-up
def build_gallery(home: Path, faces: int, threads: int) -> None:
    import numpy as np

    from facesearch.audit import MemoryAuditSink
    from facesearch.engine.engine import FaceEngine
    from facesearch.settings import load_settings
    from facesearch.store.records import FaceRecord
    from facesearch.wiring import build_service

    service = build_service(load_settings(home=home), engine=FaceEngine(threads=threads), audit=MemoryAuditSink())
    service.create_collection(CollectionId=COLLECTION)
    photos = sorted((FACES_DEV / "images").glob("img*.jpg"))[:16]
    for photo in photos:
        service.index_faces(CollectionId=COLLECTION, Image={"Bytes": photo.read_bytes()}, ExternalImageId=photo.stem)
    rng = np.random.default_rng(0)
    centre = rng.normal(scale=0.05, size=128).astype(np.float32)
    now = datetime.now(UTC)
    for start in range(0, faces, 2000):
        batch = []
        for i in range(start, min(start + 2000, faces)):
            vector = centre + rng.normal(scale=0.9 / 16, size=128).astype(np.float32)
            batch.append(
                FaceRecord(
                    str(uuid.UUID(int=i + 1)),
                    "synthetic",
                    vector,
                    {"Width": 0.2, "Height": 0.2, "Left": 0.4, "Top": 0.4},
                    0.99,
                    now,
                    external_image_id=f"s{i}",
                )
            )
        service.store.add_faces(COLLECTION, batch)
    log(f"gallery: {service.describe_collection(CollectionId=COLLECTION)['FaceCount']} faces")
    service.store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, **CREDENTIALS, "FACESEARCH_HOME": str(home), "FACESEARCH_THREADS": str(args.threads)}
    cmd = [sys.executable, "-m", "facesearch.cli", "serve", "--port", str(port), "--workers", str(args.concurrency)]
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("facesearch serve did not start")


def http_round(url: str, image_path: Path, args: argparse.Namespace, requests: int) -> tuple[float, list[float]]:
    cmd = [sys.executable, __file__, "--client", url, "--client-image", str(image_path)]
    cmd += ["--requests", str(requests), "--concurrency", str(args.concurrency)]
    out = subprocess.run(cmd, env={**os.environ, **CREDENTIALS}, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["wall_s"], result["latencies_ms"]


def machine() -> dict[str, Any]:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln), ""
    )
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=40, help="per mode per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="engine threads per request, both modes")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--client-image", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        client_main(args)
        return
    if args.quick:
        args.faces, args.requests, args.rounds = 2000, 12, 1

    from facesearch.engine.engine import FaceEngine
    from facesearch.settings import load_settings
    from facesearch.wiring import build_service

    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    server = None
    try:
        log(f"building a {args.faces}-face gallery in {work}")
        build_gallery(work / "inproc", args.faces, args.threads)
        shutil.copytree(work / "inproc", work / "served")
        image = query_image()
        image_path = work / "query.jpg"
        image_path.write_bytes(image)
        server, url = start_server(work / "served", args)
        # The in-process side audits too (JSONL, fsync'd like the server's), so both do the same work.
        service = build_service(load_settings(home=work / "inproc"), engine=FaceEngine(threads=args.threads))

        def inproc(_: int) -> float:
            start = time.perf_counter()
            out = service.search_faces_by_image(CollectionId=COLLECTION, Image={"Bytes": image})
            assert out["FaceMatches"]
            return (time.perf_counter() - start) * 1000

        log("warm-up (both modes)")
        timed_round(inproc, args.concurrency * 2, args.concurrency)
        http_round(url, image_path, args, args.concurrency * 2)
        results: dict[str, dict[str, list]] = {"in-process": {"walls": [], "ms": []}, "http": {"walls": [], "ms": []}}
        for r in range(args.rounds):
            wall, ms = timed_round(inproc, args.requests, args.concurrency)
            results["in-process"]["walls"].append(wall)
            results["in-process"]["ms"] += ms
            wall, ms = http_round(url, image_path, args, args.requests)
            results["http"]["walls"].append(wall)
            results["http"]["ms"] += ms
            log(f"round {r + 1}/{args.rounds} done")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    summary = {}
    for mode, data in results.items():
        total = args.requests * args.rounds
        summary[mode] = {"requests": total, "rps": round(total / sum(data["walls"]), 2), **percentiles(data["ms"])}
    ratio = summary["http"]["rps"] / summary["in-process"]["rps"]
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_avg_start": load_start,
        "load_avg_end": os.getloadavg(),
        "settings": {k: getattr(args, k) for k in ("faces", "requests", "rounds", "concurrency", "threads")},
        "results": summary,
        "http_over_inprocess_rps": round(ratio, 3),
    }
    out = (
        args.out
        or REPO / "bench" / "results" / f"serve-{datetime.now(UTC):%Y%m%dT%H%M%SZ}{'-quick' if args.quick else ''}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("| mode | requests | req/s | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|---|")
    for mode, s in summary.items():
        print(f"| {mode} | {s['requests']} | {s['rps']} | {s['p50']} | {s['p95']} | {s['p99']} |")
    print(f"\nHTTP / in-process throughput: {ratio:.2f}; load average {load_start} -> {report['load_avg_end']}")
    print(f"JSON: {out}")


if __name__ == "__main__":
    main()
