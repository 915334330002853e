"""Before/after benchmark of the face engine: two source trees side by side in one run, same images, same load.

Why: an engine change (models, resampling, packaging) must keep descriptors and speed; timings on a shared machine
are only comparable when both versions run in the same minutes. Each version runs in its own worker process (its
own ``src/`` first on ``sys.path``, same venv and models); the parent alternates them image by image (the order
flips every image), so background load hits both alike.

Reported per version: process start-up until the engine is ready (imports + model loading: a Lambda cold start),
total and p50/p95 per faces-dev image, faces found; between them: the time ratio (candidate / baseline) and the
largest absolute descriptor difference over faces matched by position (same image, same rank, box within 1 px).

Usage (from the repository root)::

    .venv/bin/python bench/bench_engine_ab.py                       # baseline: main, candidate: this tree
    .venv/bin/python bench/bench_engine_ab.py --baseline d1ab3d4 --rounds 3
    .venv/bin/python bench/bench_engine_ab.py --quick               # every 4th image, one round
    .venv/bin/python bench/bench_engine_ab.py --candidate-numpy     # candidate on the numpy port (no OpenCV)
    # the same code on other packages, e.g. the onnxruntime/numpy a Lambda layer would get:
    .venv/bin/python bench/bench_engine_ab.py --baseline HEAD --baseline-pythonpath /tmp/ort-1.16

Writes JSON to ``bench/results/engine-ab-<UTC date and time>.json`` (or ``--out``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = REPO.parent / "shared" / "datasets" / "faces-dev" / "images"


def worker(paths: list[str], numpy_port: bool = False) -> None:
    """Serve ``analyze`` calls: one image index per stdin line, one JSON line per answer on stdout."""
    started = time.perf_counter()
    from facesearch.engine.engine import FaceEngine

    if numpy_port:  # the engine as installed without OpenCV
        from facesearch.engine import imageops

        imageops.use_opencv(False)

    engine = FaceEngine()
    ready = time.perf_counter() - started
    import cv2
    import numpy
    import onnxruntime

    import facesearch

    versions = {"onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__, "opencv": cv2.__version__}
    print(json.dumps({"ready_s": ready, "module": facesearch.__file__, "versions": versions}), flush=True)
    datas = [Path(p).read_bytes() for p in paths]
    for line in sys.stdin:
        i = int(line)
        t = time.perf_counter()
        result = engine.analyze(datas[i])
        ms = (time.perf_counter() - t) * 1000
        faces = [
            {"box": list(f.box), "descriptor": None if f.descriptor is None else f.descriptor.tolist()}
            for f in result.faces
        ]
        print(json.dumps({"ms": ms, "faces": faces}), flush=True)


class Worker:
    def __init__(self, src: Path, paths: list[str], extra_path: str = "", numpy_port: bool = False) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(src), extra_path) if p)}
        cmd = [sys.executable, __file__, "--worker-numpy" if numpy_port else "--worker", *paths]
        started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        hello = json.loads(self.proc.stdout.readline())
        self.startup_s = time.perf_counter() - started  # interpreter + imports + sessions
        self.ready_s = hello["ready_s"]
        self.module = hello["module"]
        self.versions = hello["versions"]
        if not self.module.startswith(str(src)):
            raise SystemExit(f"worker imported {self.module}, not the tree under {src}")

    def analyze(self, i: int) -> dict:
        self.proc.stdin.write(f"{i}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def export_tree(ref: str, dest: Path) -> Path:
    """``src/`` of git ``ref`` unpacked into ``dest`` (no checkout, no worktree)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "src"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def compare(a: list[dict], b: list[dict]) -> tuple[float, int, int]:
    """(max |descriptor difference|, faces compared, images whose faces differ in count or place)."""
    worst, compared, differing = 0.0, 0, 0
    for fa, fb in zip(a, b, strict=True):
        if len(fa["faces"]) != len(fb["faces"]):
            differing += 1
            continue
        for x, y in zip(fa["faces"], fb["faces"], strict=True):
            if max(abs(p - q) for p, q in zip(x["box"], y["box"], strict=True)) > 1.0:
                differing += 1
                break
            if x["descriptor"] is not None and y["descriptor"] is not None:
                worst = max(worst, max(abs(p - q) for p, q in zip(x["descriptor"], y["descriptor"], strict=True)))
                compared += 1
    return worst, compared, differing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default="main", help="git ref of the baseline (default: main)")
    ap.add_argument("--candidate-src", type=Path, default=REPO / "src", help="candidate source tree (default: ./src)")
    ap.add_argument("--baseline-pythonpath", default="", help="extra sys.path for the baseline (other packages)")
    ap.add_argument("--candidate-pythonpath", default="", help="extra sys.path for the candidate")
    ap.add_argument("--candidate-numpy", action="store_true", help="candidate without OpenCV (engine.imageops port)")
    ap.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    ap.add_argument("--rounds", type=int, default=2, help="timed passes over the images")
    ap.add_argument("--quick", action="store_true", help="every 4th image, one round")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    paths = sorted(str(p) for p in args.images.iterdir() if p.is_file())
    if args.quick:
        paths, args.rounds = paths[::4], 1
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="engine-ab-") as tmp:
        base_src = export_tree(args.baseline, Path(tmp))
        workers = {
            "baseline": Worker(base_src, paths, args.baseline_pythonpath),
            "candidate": Worker(
                args.candidate_src.resolve(), paths, args.candidate_pythonpath, numpy_port=args.candidate_numpy
            ),
        }
        names = list(workers)
        try:
            for i in range(min(3, len(paths))):  # warm-up
                for w in workers.values():
                    w.analyze(i)
            times: dict[str, list[float]] = {n: [] for n in names}
            answers: dict[str, list[dict]] = {n: [] for n in names}
            for r in range(args.rounds):
                for i in range(len(paths)):
                    order = names if (i + r) % 2 == 0 else names[::-1]
                    for n in order:
                        out = workers[n].analyze(i)
                        times[n].append(out["ms"])
                        if r == 0:
                            answers[n].append(out)
        finally:
            for w in workers.values():
                w.close()
    worst, compared, differing = compare(answers["baseline"], answers["candidate"])
    summary = {
        n: {
            "startup_s": workers[n].startup_s,
            "engine_ready_s": workers[n].ready_s,
            "total_s": sum(times[n]) / 1000 / args.rounds,
            "p50_ms": statistics.median(times[n]),
            "p95_ms": pct(times[n], 0.95),
            "faces": sum(len(a["faces"]) for a in answers[n]),
            "versions": workers[n].versions,
        }
        for n in names
    }
    report = {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "baseline": args.baseline,
        "baseline_pythonpath": args.baseline_pythonpath,
        "candidate_pythonpath": args.candidate_pythonpath,
        "candidate": str(args.candidate_src) + (" (numpy port, no OpenCV)" if args.candidate_numpy else ""),
        "git_head": subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "images": len(paths),
        "rounds": args.rounds,
        "threads": os.environ.get("FACESEARCH_THREADS", "default (cores)"),
        "cpus": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "summary": summary,
        "ratio_total": summary["candidate"]["total_s"] / summary["baseline"]["total_s"],
        "ratio_startup": summary["candidate"]["startup_s"] / summary["baseline"]["startup_s"],
        "max_abs_descriptor_diff": worst,
        "faces_compared": compared,
        "images_with_different_faces": differing,
    }
    out = args.out or REPO / "bench" / "results" / f"engine-ab-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"| {len(paths)} faces-dev images x {args.rounds} | baseline ({args.baseline}) | candidate | ratio |")
    print("|---|---|---|---|")
    b, c = summary["baseline"], summary["candidate"]
    for key, label in [
        ("startup_s", "start-up to engine ready, s"),
        ("total_s", "total per pass, s"),
        ("p50_ms", "p50 per image, ms"),
        ("p95_ms", "p95 per image, ms"),
    ]:
        print(f"| {label} | {b[key]:.2f} | {c[key]:.2f} | {c[key] / b[key]:.2f} |")
    print(f"| faces | {b['faces']} | {c['faces']} | |")
    print(f"| packages | {b['versions']} | {c['versions']} | |")
    print(
        f"\nmax |descriptor diff| {worst:.3g} over {compared} faces; images with different faces: {differing}; "
        f"load {load_start[0]:.1f} -> {report['loadavg_end'][0]:.1f}; JSON: {out}"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("--worker", "--worker-numpy"):
        worker(sys.argv[2:], numpy_port=sys.argv[1] == "--worker-numpy")
    else:
        raise SystemExit(main())
