"""Benchmark our FaceEngine against the face_recognition-style dlib pipeline, side by side in one run.

Both pipelines run end to end on the same image bytes: decode → detect → align → embed every face found.

- ours: ``FaceEngine.analyze(bytes)``: safe decode (PIL, EXIF transpose, sha256) → MTCNN on onnxruntime →
  5-point similarity alignment → dlib ResNet converted to ONNX, chips batched. onnxruntime uses ``--threads``
  intra-op threads (default: ``FACESEARCH_THREADS`` or the cores of the CPU affinity mask, as the engine
  itself does).
- dlib: what ``face_recognition`` does with dlib-bin: PIL decode (+ EXIF transpose, a no-op on our data) →
  ``get_frontal_face_detector()`` HOG with upsample 1 → ``shape_predictor_5_face_landmarks`` →
  ``face_recognition_model_v1.compute_face_descriptor(img, shape)`` one face at a time. dlib-bin is built
  without BLAS/CUDA and runs on the calling thread; the CPU/wall column shows how many cores each pipeline
  actually kept busy.

Workloads (data under ``../shared/datasets/`` relative to the repository root):

1. single: ``faces-dev/images/img1.jpg`` resized to 640 px on its longest side and re-encoded as JPEG (in memory);
   3 warm-ups, then 30 timed iterations per pipeline (quick: 1 + 8). p50/p95 ms.
2. faces-dev: every file in ``faces-dev/images/`` (64; ``img47.jpg`` is really WEBP) once per pipeline, after a
   warm-up pass over the first 3 (quick: every 4th file). Total s, p50/p95 ms per image, faces found, dlib/ours.
3. crowd: ``crowd/largest_selfie.jpg`` (1600x898, a few hundred faces): 1 warm-up, then 3 timed runs per pipeline
   (quick: 1). p50 s and faces found. Then one try of dlib with upsample 2 in a child process that is stopped
   if the run is not done within 60 s.

Pipelines alternate call by call (ours, dlib, ours, ...) so background load on a shared machine hits both alike.
Every loop has a fixed count; the default run takes about 4-6 minutes on 2 cores.

Usage (from the repository root; models built with ``facesearch models build``)::

    .venv/bin/python bench/bench_engine.py                 # full run
    .venv/bin/python bench/bench_engine.py --quick         # smoke run, fewer iterations and images
    .venv/bin/python bench/bench_engine.py --skip-dlib     # our engine only
    .venv/bin/python bench/bench_engine.py --threads 1     # ours on one thread too

Prints a markdown report to stdout (progress goes to stderr) and writes JSON, with per-image timings, the machine,
versions, thread settings, git state, the exact command and an ISO timestamp, to
``bench/results/engine-<UTC date and time>[-quick].json`` (or ``--out``). Take real numbers on a quiet machine:
the load average at start and end is recorded so a noisy run can be recognised.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import multiprocessing as mp
import os
import platform
import queue
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASETS = REPO.parent / "shared" / "datasets"
RESULTS_DIR = REPO / "bench" / "results"
SINGLE_IMAGE = "faces-dev/images/img1.jpg"
FACES_DEV_DIR = "faces-dev/images"
CROWD_IMAGE = "crowd/largest_selfie.jpg"
SINGLE_SIDE = 640
SINGLE_JPEG_QUALITY = 90
UPSAMPLE2_BUDGET_S = 60.0
CHILD_LOAD_BUDGET_S = 120.0  # loading dlib's two .dat files in the child; far above the ~2 s it takes
# Environment that changes thread use or math kernels; recorded, never modified.
RECORDED_ENV = (
    "FACESEARCH_THREADS",
    "FACESEARCH_MODEL_DIR",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "MKL_NUM_THREADS",
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- pipelines ----------------------------------------------------------------------------------------------------


@dataclass
class Call:
    """One timed end-to-end call: wall and process CPU milliseconds, faces found, descriptors."""

    wall_ms: float
    cpu_ms: float
    faces: int
    descriptors: list[np.ndarray]


class Pipeline:
    name = ""

    def run(self, data: bytes) -> tuple[int, list[np.ndarray]]:
        raise NotImplementedError

    def timed(self, data: bytes) -> Call:
        c0, t0 = time.process_time(), time.perf_counter()
        faces, descriptors = self.run(data)
        t1, c1 = time.perf_counter(), time.process_time()
        return Call((t1 - t0) * 1e3, (c1 - c0) * 1e3, faces, descriptors)


class OursPipeline(Pipeline):
    name = "ours"

    def __init__(self, threads: int) -> None:
        from facesearch.engine.engine import FaceEngine

        self.threads = threads
        self.engine = FaceEngine(threads=threads)

    def run(self, data: bytes) -> tuple[int, list[np.ndarray]]:
        result = self.engine.analyze(data)  # decode included; every face embedded (no quality filter)
        return len(result.faces), [f.descriptor for f in result.faces if f.descriptor is not None]


class DlibPipeline(Pipeline):
    def __init__(self, upsample: int = 1) -> None:
        import dlib

        from facesearch.models.build import dlib_file

        self.upsample = upsample
        self.name = f"dlib-hog-up{upsample}"
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(dlib_file("shape_predictor_5_face_landmarks.dat")))
        self.facerec = dlib.face_recognition_model_v1(str(dlib_file("dlib_face_recognition_resnet_model_v1.dat")))

    def run(self, data: bytes) -> tuple[int, list[np.ndarray]]:
        with Image.open(io.BytesIO(data)) as image:
            rgb = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        boxes = self.detector(rgb, self.upsample)
        descriptors = [np.asarray(self.facerec.compute_face_descriptor(rgb, self.predictor(rgb, box))) for box in boxes]
        return len(boxes), descriptors


# -- statistics ---------------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None  # linear interpolation between ranks


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


@dataclass
class Series:
    calls: list[Call] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | None]:
        wall = [c.wall_ms for c in self.calls]
        total_wall = sum(wall)
        return {
            "n": len(wall),
            "p50_ms": pct(wall, 50),
            "p95_ms": pct(wall, 95),
            "min_ms": min(wall) if wall else None,
            "max_ms": max(wall) if wall else None,
            "total_s": total_wall / 1e3,
            "cpu_per_wall": sum(c.cpu_ms for c in self.calls) / total_wall if total_wall else None,
            "faces_total": sum(c.faces for c in self.calls),
        }


def interleaved(pipelines: list[Pipeline], data: bytes, warmups: int, iterations: int) -> dict[str, Series]:
    for _ in range(warmups):
        for p in pipelines:
            p.run(data)
    series = {p.name: Series() for p in pipelines}
    for _ in range(iterations):
        for p in pipelines:
            series[p.name].calls.append(p.timed(data))
    return series


# -- workloads ----------------------------------------------------------------------------------------------------


def resized_jpeg(path: Path, side: int, quality: int) -> tuple[bytes, tuple[int, int]]:
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
    scale = side / max(upright.size)
    size = (max(1, round(upright.width * scale)), max(1, round(upright.height * scale)))
    small = upright.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=quality)
    return buf.getvalue(), size


def bench_single(pipelines: list[Pipeline], datasets: Path, warmups: int, iterations: int) -> dict:
    data, size = resized_jpeg(datasets / SINGLE_IMAGE, SINGLE_SIDE, SINGLE_JPEG_QUALITY)
    log(f"single: {SINGLE_IMAGE} at {size[0]}x{size[1]}, {warmups} warm-ups + {iterations} iterations")
    series = interleaved(pipelines, data, warmups, iterations)
    out: dict = {
        "image": SINGLE_IMAGE,
        "resized_to": list(size),
        "jpeg_quality": SINGLE_JPEG_QUALITY,
        "bytes": len(data),
        "warmups": warmups,
        "iterations": iterations,
        "pipelines": {name: s.summary() | {"faces": s.calls[-1].faces} for name, s in series.items()},
    }
    # Sanity check that both pipelines embed the same face comparably: distance between the largest/first faces.
    if "ours" in series and len(series) > 1:
        other = next(n for n in series if n != "ours")
        a, b = series["ours"].calls[-1].descriptors, series[other].calls[-1].descriptors
        if a and b:
            out["descriptor_distance_ours_vs_dlib"] = float(np.linalg.norm(a[0] - b[0]))
    return out


def bench_faces_dev(pipelines: list[Pipeline], datasets: Path, warmups: int, every: int) -> dict:
    folder = datasets / FACES_DEV_DIR
    files = sorted(p for p in folder.iterdir() if p.is_file())
    chosen = files[::every]
    log(f"faces-dev: {len(chosen)} of {len(files)} images, warm-up pass over {warmups}")
    blobs = [(p.name, p.read_bytes()) for p in chosen]
    for _, data in blobs[:warmups]:
        for p in pipelines:
            p.run(data)
    series = {p.name: Series() for p in pipelines}
    per_image = []
    for i, (name, data) in enumerate(blobs, 1):
        with Image.open(io.BytesIO(data)) as image:
            row: dict = {"image": name, "format": image.format, "size": list(image.size), "bytes": len(data)}
        for p in pipelines:
            call = p.timed(data)
            series[p.name].calls.append(call)
            row[p.name] = {"ms": round(call.wall_ms, 2), "faces": call.faces}
        per_image.append(row)
        if i % 8 == 0 or i == len(blobs):
            log(f"  {i}/{len(blobs)}")
    out: dict = {
        "folder": FACES_DEV_DIR,
        "images": len(chosen),
        "of": len(files),
        "every": every,
        "warmup_images": warmups,
        "pipelines": {name: s.summary() for name, s in series.items()},
        "per_image": per_image,
    }
    if len(series) > 1:
        names = [p.name for p in pipelines]
        out["images_with_different_face_counts"] = sum(
            1 for row in per_image if len({row[n]["faces"] for n in names}) > 1
        )
    return out


def _upsample_child(path: str, upsample: int, results: mp.Queue) -> None:
    """Runs in a child process so the parent can stop a run that goes over budget."""
    pipeline = DlibPipeline(upsample)
    data = Path(path).read_bytes()
    results.put(("ready",))
    call = pipeline.timed(data)
    results.put(("done", call.wall_ms / 1e3, call.faces, call.cpu_ms / call.wall_ms))


def _receive(results: mp.Queue, child: mp.process.BaseProcess, timeout: float) -> tuple | None:
    """The child's next message, or None if it died or sent nothing within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            return results.get(timeout=min(left, 1.0))
        except queue.Empty:
            if not child.is_alive():
                return None
    return None


def try_dlib_upsample(path: Path, upsample: int, budget_s: float) -> dict:
    ctx = mp.get_context("spawn")  # never fork a process that holds onnxruntime thread pools
    results = ctx.Queue()
    child = ctx.Process(target=_upsample_child, args=(str(path), upsample, results), daemon=True)
    child.start()
    out: dict = {"upsample": upsample, "budget_s": budget_s, "runs": 1, "warmups": 0}
    try:
        if _receive(results, child, CHILD_LOAD_BUDGET_S) is None:
            out["status"] = f"failed: child did not load dlib (exit code {child.exitcode})"
            return out
        msg = _receive(results, child, budget_s)
        if msg is None:
            died = child.exitcode is not None
            out["status"] = f"failed: child exit code {child.exitcode}" if died else f"stopped after {budget_s:.0f} s"
            return out
        _, seconds, faces, cpu_per_wall = msg
        out |= {"status": "ok", "seconds": seconds, "faces": faces, "cpu_per_wall": cpu_per_wall}
    finally:
        if child.is_alive():
            child.terminate()
        child.join(timeout=10)
    return out


def bench_crowd(pipelines: list[Pipeline], datasets: Path, runs: int, upsample2: bool) -> dict:
    path = datasets / CROWD_IMAGE
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        size = list(image.size)
    log(f"crowd: {CROWD_IMAGE} {size[0]}x{size[1]}, 1 warm-up + {runs} runs")
    series = interleaved(pipelines, data, 1, runs)
    out: dict = {
        "image": CROWD_IMAGE,
        "size": size,
        "warmups": 1,
        "runs": runs,
        "pipelines": {
            name: s.summary()
            | {"p50_s": (pct([c.wall_ms for c in s.calls], 50) or 0) / 1e3, "faces": s.calls[-1].faces}
            for name, s in series.items()
        },
    }
    ours = next((p for p in pipelines if isinstance(p, OursPipeline)), None)
    if ours is not None:  # detection alone (decode → detect → align → quality, no descriptors)
        times, faces = [], 0
        for _ in range(runs):
            t0 = time.perf_counter()
            faces = len(ours.engine.analyze(data, embed=False).faces)
            times.append(time.perf_counter() - t0)
        out["ours_detect_only"] = {"p50_s": float(np.median(times)), "faces": faces, "runs": runs}
    if upsample2:
        log(f"crowd: dlib HOG upsample 2, one run, stopped after {UPSAMPLE2_BUDGET_S:.0f} s")
        out["dlib_upsample2"] = try_dlib_upsample(path, 2, UPSAMPLE2_BUDGET_S)
    return out


# -- environment --------------------------------------------------------------------------------------------------


def _cmd(args: list[str]) -> str | None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=20, cwd=REPO)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def environment(ours_threads: int | None) -> dict:
    import cv2
    import onnxruntime
    import PIL
    import psutil

    try:
        import dlib

        dlib_info: dict = {
            "version": dlib.__version__,
            "use_blas": bool(dlib.DLIB_USE_BLAS),
            "use_cuda": bool(dlib.DLIB_USE_CUDA),
            "use_avx": bool(getattr(dlib, "USE_AVX_INSTRUCTIONS", False)),
        }
    except ImportError:
        dlib_info = {"version": None}
    nproc = _cmd(["nproc"])
    status = _cmd(["git", "status", "--porcelain", "--", "src/facesearch"])
    return {
        "machine": {
            "nproc": int(nproc) if nproc and nproc.isdigit() else len(os.sched_getaffinity(0)),
            "os_cpu_count": os.cpu_count(),
            "cpu_model": cpu_model(),
            "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": {
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
            "dlib": dlib_info,
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "pillow": PIL.__version__,
        },
        "threads": {
            "ours_onnxruntime_intra_op": ours_threads,
            "ours_note": "MTCNN and ResNet sessions: intra_op threads as above, inter_op 1, spinning off",
            "dlib_note": "HOG scan, shape predictor and ResNet run on the calling thread (dlib-bin: no BLAS/CUDA)",
        },
        "env": {k: os.environ[k] for k in RECORDED_ENV if k in os.environ},
        "git": {
            "commit": _cmd(["git", "rev-parse", "HEAD"]),
            "uncommitted_engine_changes": status.splitlines() if status else [],
        },
    }


# -- report -------------------------------------------------------------------------------------------------------


def fmt(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def markdown(report: dict, dlib_name: str | None) -> str:
    env = report["environment"]
    m, v, t = env["machine"], env["versions"], env["threads"]
    dirty = ", ".join(env["git"]["uncommitted_engine_changes"])
    names = ["ours"] + ([dlib_name] if dlib_name else [])
    head = "| workload | metric | ours | dlib HOG up=1 | dlib/ours |" if dlib_name else "| workload | metric | ours |"
    sep = "|---|---|---:|---:|---:|" if dlib_name else "|---|---|---:|"
    rows: list[str] = []

    def row(workload: str, metric: str, key: str, src: dict, digits: int = 1, show_ratio: bool = True) -> None:
        vals = [src["pipelines"][n].get(key) for n in names]
        cells = [fmt(x, digits) for x in vals]
        if dlib_name:
            cells.append(fmt(ratio(vals[1], vals[0]), 2) if show_ratio else "")
        rows.append(f"| {workload} | {metric} | " + " | ".join(cells) + " |")

    s = report["single"]
    label = f"single {s['resized_to'][0]}x{s['resized_to'][1]} (N={s['iterations']})"
    row(label, "p50 ms", "p50_ms", s)
    row("", "p95 ms", "p95_ms", s)
    row("", "faces", "faces", s, show_ratio=False)
    row("", "CPU/wall", "cpu_per_wall", s, 2, show_ratio=False)
    d = report["faces_dev"]
    row(f"faces-dev ({d['images']} images)", "total s", "total_s", d, 2)
    row("", "p50 ms/image", "p50_ms", d)
    row("", "p95 ms/image", "p95_ms", d)
    row("", "faces found", "faces_total", d, show_ratio=False)
    row("", "CPU/wall", "cpu_per_wall", d, 2, show_ratio=False)
    c = report["crowd"]
    row(f"crowd {c['size'][0]}x{c['size'][1]} (runs={c['runs']})", "p50 s", "p50_s", c, 2)
    row("", "faces found", "faces", c, show_ratio=False)
    row("", "CPU/wall", "cpu_per_wall", c, 2, show_ratio=False)
    if "ours_detect_only" in c:
        o = c["ours_detect_only"]
        tail = " | |" if dlib_name else ""
        rows.append(f"| | detection only, p50 s ({o['faces']} faces, no descriptors) | {o['p50_s']:.2f}{tail} |")

    lines = [
        f"# Engine benchmark{' (quick)' if report['quick'] else ''}: {report['timestamp']}",
        "",
        f"- command: `{report['command']}`",
        f"- machine: nproc {m['nproc']}, {m['cpu_model']}, {m['ram_gb']} GB RAM, {m['platform']}; "
        f"load average {m['loadavg_start']} at start, {m.get('loadavg_end')} at end",
        f"- versions: python {v['python']}, onnxruntime {v['onnxruntime']}, dlib {v['dlib'].get('version')} "
        f"(BLAS {v['dlib'].get('use_blas')}, AVX {v['dlib'].get('use_avx')}), numpy {v['numpy']}, "
        f"opencv {v['opencv']}, pillow {v['pillow']}",
        f"- threads: ours onnxruntime intra-op {t['ours_onnxruntime_intra_op']}; dlib: {t['dlib_note']}",
        f"- env (recorded, untouched): {env['env'] or 'none of ' + ', '.join(RECORDED_ENV)}",
        f"- git {env['git']['commit']}; uncommitted changes under src/facesearch: {dirty or 'none'}",
        "- each call is end to end on image bytes: decode → detect → align → embed every face; "
        "CPU/wall = process CPU time / wall time (cores kept busy)",
        "",
        head,
        sep,
        *rows,
    ]
    if dlib_name and "descriptor_distance_ours_vs_dlib" in s:
        lines += ["", f"Single image: ours vs dlib descriptor distance {s['descriptor_distance_ours_vs_dlib']:.3f}."]
    if dlib_name:
        lines += ["", f"faces-dev images where the face counts differ: {d['images_with_different_face_counts']}."]
    up2 = c.get("dlib_upsample2")
    if up2:
        if up2["status"] == "ok":
            lines += [
                f"Crowd, dlib HOG upsample 2 (one run, child process): {up2['seconds']:.2f} s, "
                f"{up2['faces']} faces (CPU/wall {up2['cpu_per_wall']:.2f})."
            ]
        else:
            lines += [f"Crowd, dlib HOG upsample 2: {up2['status']}."]
    lines += ["", f"JSON: {report['json_path']}"]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: fewer iterations, every 4th faces-dev image")
    ap.add_argument("--skip-dlib", action="store_true", help="benchmark our engine only")
    ap.add_argument("--threads", type=int, default=None, help="onnxruntime threads for ours (default: as the engine)")
    ap.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS, help="shared datasets root")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default: bench/results/engine-<date>.json)")
    args = ap.parse_args(argv)

    started = dt.datetime.now(dt.UTC)
    from facesearch.engine.cores import available_cores

    threads = args.threads or int(os.environ.get("FACESEARCH_THREADS", 0)) or available_cores()
    if args.quick:
        single_warm, single_n, dev_every, crowd_runs = 1, 8, 4, 1
    else:
        single_warm, single_n, dev_every, crowd_runs = 3, 30, 1, 3

    command = shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join([sys.executable, *argv])
    report: dict = {
        "timestamp": started.isoformat(timespec="seconds"),
        "command": command,
        "cwd": os.getcwd(),
        "quick": args.quick,
        "environment": environment(threads),
    }
    log("loading pipelines")
    pipelines: list[Pipeline] = [OursPipeline(threads)]
    if not args.skip_dlib:
        pipelines.append(DlibPipeline(upsample=1))
    dlib_name = None if args.skip_dlib else pipelines[1].name

    report["single"] = bench_single(pipelines, args.datasets, single_warm, single_n)
    report["faces_dev"] = bench_faces_dev(pipelines, args.datasets, 3, dev_every)
    report["crowd"] = bench_crowd(pipelines, args.datasets, crowd_runs, upsample2=not args.skip_dlib)
    if dlib_name:
        for key in ("single", "faces_dev", "crowd"):
            p = report[key]["pipelines"]
            report[key]["dlib_over_ours"] = {
                k: ratio(p[dlib_name][k], p["ours"][k]) for k in ("p50_ms", "p95_ms", "total_s")
            }

    finished = dt.datetime.now(dt.UTC)
    report["environment"]["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report["elapsed_s"] = round((finished - started).total_seconds(), 1)
    out = args.out or RESULTS_DIR / f"engine-{started:%Y%m%dT%H%M%SZ}{'-quick' if args.quick else ''}.json"
    report["json_path"] = str(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report, dlib_name))
    log(f"done in {report['elapsed_s']} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
