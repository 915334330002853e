"""Before/after search latency of the embedded store: two source trees, alternating child processes.

The vector-store benchmark's p95 on a busy shared machine measures the scheduler more than the code (numpy's
p95 varied 24–37 ms between runs of the same code at load 15). This isolates a code change: every child builds
the same store (``--n`` random faces, seed fixed; IVF from 20k faces on) with one source tree on its
``PYTHONPATH`` and times ``--queries`` searches (k=10) after 500 warm-up searches; the children alternate
between the trees (A B A B …, ``--reps`` pairs), so background load drifts hit both alike. Reported per tree:
the median over the pairs of each child's p25/p50/p95, and B/A.

Usage (repository root; A = a checkout of the old code, e.g. ``git archive <commit> | tar -x -C /tmp/old``)::

    .venv/bin/python bench/bench_search_overhead.py --src-a /tmp/old/src --src-b src --reps 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CHILD = r"""
import json, sys, tempfile, time
from datetime import UTC, datetime
import numpy as np
from facesearch.store.embedded import EmbeddedStore
from facesearch.store.records import CollectionRecord, FaceRecord
n, q = int(sys.argv[1]), int(sys.argv[2])
t0 = datetime(2024, 1, 1, tzinfo=UTC)
rng = np.random.default_rng(1)
data = rng.normal(0, 0.05, (n, 128)).astype(np.float32)
queries = data[rng.integers(0, n, q)] + rng.normal(0, 0.01, (q, 128)).astype(np.float32)
box = {"Width": 1.0, "Height": 1.0, "Left": 0.0, "Top": 0.0}
with tempfile.TemporaryDirectory() as d, EmbeddedStore(d) as store:
    store.create_collection(CollectionRecord("c", t0, "t"))
    for s in range(0, n, 5000):
        batch = data[s : s + 5000]
        store.add_faces("c", [FaceRecord(f"f{s + i:07d}", "i", v, box, 99.0, t0) for i, v in enumerate(batch)])
    for v in queries[:500]:
        store.search("c", v, k=10)
    ms = []
    for v in queries:
        t = time.perf_counter()
        store.search("c", v, k=10)
        ms.append((time.perf_counter() - t) * 1000)
print(json.dumps({f"p{p}": float(np.percentile(ms, p)) for p in (25, 50, 95)}))
"""


def child(src: Path, n: int, queries: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src.resolve()))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(queries)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src-a", type=Path, required=True, help="source tree A (the 'before'), holding facesearch/")
    p.add_argument("--src-b", type=Path, required=True, help="source tree B (the 'after')")
    p.add_argument("--n", type=int, default=30_000, help="faces (IVF search from 20,000)")
    p.add_argument("--queries", type=int, default=3000)
    p.add_argument("--reps", type=int, default=4, help="A/B pairs")
    p.add_argument("--out", type=Path, help="JSON path (default bench/results/search-overhead-<UTC time>.json)")
    args = p.parse_args(argv)
    started = datetime.now(UTC)
    load_start = os.getloadavg()
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    for rep in range(args.reps):
        for name, src in (("A", args.src_a), ("B", args.src_b)):
            runs[name].append(child(src, args.n, args.queries))
            print(f"pair {rep} {name}: {runs[name][-1]}", file=sys.stderr)
    summary = {
        name: {q: round(statistics.median(r[q] for r in rs), 3) for q in ("p25", "p50", "p95")}
        for name, rs in runs.items()
    }
    ratio = {q: round(summary["B"][q] / summary["A"][q], 3) for q in ("p25", "p50", "p95")}
    load_end = os.getloadavg()
    report: dict[str, Any] = {
        "benchmark": "search_overhead",
        "started": started.isoformat(),
        "command": [sys.executable, *sys.argv],
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "load_average": {"start": load_start, "end": load_end},
        "runs": runs,
        "median_ms": summary,
        "b_over_a": ratio,
    }
    repo = Path(__file__).resolve().parent.parent
    out = args.out or repo / "bench" / "results" / f"search-overhead-{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("| tree | p25 ms | p50 ms | p95 ms |\n|---|---|---|---|")
    for name in ("A", "B"):
        s = summary[name]
        print(f"| {name} | {s['p25']} | {s['p50']} | {s['p95']} |")
    print(f"| B/A | {ratio['p25']} | {ratio['p50']} | {ratio['p95']} |")
    print(f"\nload average start {load_start}, end {load_end}; JSON: {out}")


if __name__ == "__main__":
    main()
