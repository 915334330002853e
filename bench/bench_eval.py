"""`facesearch eval` before and after issue 9, side by side on the same LFW subset, in one run.

- baseline: the evaluation of commit d1ab3d4 (``src/facesearch/evaluation.py`` at that commit, loaded from git):
  describes every image, then builds an N×N×128 difference array for all distances (memory grows as N²).
- cold: today's ``evaluate`` with an empty descriptor cache (describes every image, caches the descriptors).
- warm: today's ``evaluate`` again (descriptors from the cache: no image work).

Each runs in its own child process, measured for wall time and peak RSS (``ru_maxrss``), one after the other
(baseline, cold, warm); the load average at start and end is printed, since the machine may be shared. The
subset is the first N photos of LFW in file-name order (people with several photos and singletons mixed), with
View 2's pairs among them.

Usage (from the repository root)::

    .venv/bin/python bench/bench_eval.py --images 1000

Prints a markdown table and the load average at start and end. The full-LFW run is the documented command
``facesearch eval ../shared/datasets/lfw --json --plots DIR`` timed with ``/usr/bin/time -v`` (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LFW = REPO.parent / "shared" / "datasets" / "lfw"
BASELINE_COMMIT = "d1ab3d4"

CHILD = r"""
import importlib.util, json, sys, time
kind, root, path = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
if kind == "baseline":
    spec = importlib.util.spec_from_file_location("old_evaluation", path)
    mod = importlib.util.module_from_spec(spec); sys.modules["old_evaluation"] = mod; spec.loader.exec_module(mod)
    from facesearch.engine.engine import FaceEngine
    report = mod.evaluate(root, FaceEngine())
else:
    from facesearch.evaluation import evaluate
    report = evaluate(root)
print(json.dumps({"seconds": time.perf_counter() - start, "pairs_accuracy": report.get("pairs_accuracy"),
                  "rank1": report.get("rank1"), "rank1_total": report.get("rank1_total")}))
"""


def make_subset(n: int, dest: Path) -> Path:
    images = sorted(p.name for p in (LFW / "images").iterdir())[:n]
    keep = set(images)
    (dest / "images").mkdir(parents=True)
    for name in images:
        os.symlink(LFW / "images" / name, dest / "images" / name)
    with (LFW / "identities.csv").open(newline="") as f, (dest / "identities.csv").open("w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["image", "identity"])
        w.writerows((r["image"], r["identity"]) for r in csv.DictReader(f) if r["image"] in keep)
    with (LFW / "pairs.csv").open(newline="") as f, (dest / "pairs.csv").open("w", newline="") as out:
        rows = [r for r in csv.DictReader(f) if r["image_a"] in keep and r["image_b"] in keep]
        w2 = csv.DictWriter(out, fieldnames=["image_a", "image_b", "same_person", "fold"])
        w2.writeheader()
        w2.writerows(rows)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=1000)
    args = ap.parse_args()
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_subset(args.images, Path(tmp) / "lfw-subset")
        baseline_file = Path(tmp) / "old_evaluation.py"
        source = subprocess.run(
            ["git", "show", f"{BASELINE_COMMIT}:src/facesearch/evaluation.py"], cwd=REPO, capture_output=True, text=True
        )
        baseline_file.write_text(source.stdout)
        env = {**os.environ, "FACESEARCH_EVAL_CACHE": str(Path(tmp) / "cache")}  # starts empty: "cold"
        runs = [_isolated(kind, root, baseline_file, env) for kind in ("baseline", "cold", "warm")]
    load1 = os.getloadavg()
    print(f"LFW subset: first {args.images} photos; load average {load0[0]:.1f} at start, {load1[0]:.1f} at end")
    print("| run | wall s | peak RSS MB | pairs accuracy | rank-1 |")
    print("|---|---|---|---|---|")
    for r in runs:
        if "error" in r:
            print(f"| {r['kind']} | {r['wall_s']:.1f} | failed: {r['error']} | | |")
            continue
        rss = f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") else "n/a"
        print(f"| {r['kind']} | {r['wall_s']:.1f} | {rss} | {r['pairs_accuracy']} | {r['rank1']}/{r['rank1_total']} |")
    base, cold, warm = (r.get("wall_s") for r in runs)
    if base and cold and warm:
        print(f"\nbaseline/cold {base / cold:.2f}×, baseline/warm {base / warm:.1f}×")
    return 0


def _isolated(kind: str, root: Path, baseline_file: Path, env: dict[str, str]) -> dict:
    """Run in a fresh grandchild under a wrapper that reports the grandchild's own peak RSS."""
    wrapper = (
        "import resource, subprocess, sys, json; "
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stderr.write(p.stderr[-2000:]); "
        "print(p.stdout.strip().splitlines()[-1] if p.stdout.strip() else '{}'); "
        "print(json.dumps({'peak_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))"
    )
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, "-c", CHILD, kind, str(root), str(baseline_file)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    lines = out.stdout.strip().splitlines()
    if len(lines) < 2 or lines[-2] == "{}":
        return {"kind": kind, "error": out.stderr.strip().splitlines()[-1:], "wall_s": wall}
    return {
        "kind": kind,
        "wall_s": wall,
        "peak_rss_mb": json.loads(lines[-1])["peak_kb"] / 1024,
        **json.loads(lines[-2]),
    }


if __name__ == "__main__":
    raise SystemExit(main())
