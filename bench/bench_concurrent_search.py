"""Concurrent-search throughput of the embedded store with faiss on one thread vs one thread per core.

Why: OpenMP keeps a team of threads per calling thread, so with faiss' default (a thread per core) every
request thread that searches can wake a whole team; concurrent requests then run more threads than there are
cores, and OpenMP's spin-waiting makes that expensive on a busy machine. The store therefore runs faiss on
``faiss_threads`` threads (default 1), set in the calling thread. This measures what that choice costs or
gains, both settings side by side in one process, on one index:

* data: ``--n`` descriptors shaped like real ones (bench_vector_stores.generate, ``--shape real``), random
  UUID face ids, ``--queries`` fresh photos of enrolled people as queries;
* load: ``add_faces`` in batches of 5,000 into two collections, one per setting (faces/s of each; the IVF is
  trained and retrained during the load, which is where faiss uses threads most);
* search: ``store.search(k=10)`` from 1, 2, 4 (``--clients``) threads of this process for ``--seconds`` per
  cell, every cell against the same collection; the cells alternate between the two settings and repeat
  ``--reps`` times (the order reversed every repetition), so a change in background load hits both alike.
  Reported per cell: searches/s (median of the repetitions, and their range), latency p50/p95 over all
  repetitions, and the process CPU time per wall second (cores kept busy).

Usage (repository root)::

    .venv/bin/python bench/bench_concurrent_search.py                      # 100k faces, about 3 minutes
    .venv/bin/python bench/bench_concurrent_search.py --n 20000 --seconds 3 --reps 1   # smoke

Prints a markdown table and writes JSON to ``bench/results/concurrent-search-<n>-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_vector_stores as bvs  # the data generator and the machine/git records

from facesearch.store.embedded import EmbeddedStore
from facesearch.store.embedded.vector_index import cpu_count
from facesearch.store.records import CollectionRecord, FaceRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="faces to index")
    p.add_argument("--queries", type=int, default=2000, help="distinct queries (cycled)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--clients", default="1,2,4", help="client threads per cell, comma separated")
    p.add_argument(
        "--faiss-threads", default="1,cores", help="settings to compare, comma separated ('cores': every core)"
    )
    p.add_argument("--seconds", type=float, default=8.0, help="duration of one cell")
    p.add_argument("--reps", type=int, default=3, help="repetitions of every cell")
    p.add_argument("--warmup", type=int, default=200, help="searches before the first cell")
    p.add_argument("--batch", type=int, default=5000, help="faces per add_faces call while loading")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, help="where the store goes (default: a temporary directory)")
    p.add_argument("--out", type=Path, help="JSON path")
    p.add_argument("--note", default="", help="free text for the report (e.g. what else was running)")
    return p.parse_args(argv)


def thread_settings(spec: str) -> list[int]:
    return [cpu_count() if s.strip() == "cores" else int(s) for s in spec.split(",") if s.strip()]


def records(vectors: np.ndarray, ids: list[str]) -> list[FaceRecord]:
    box = {"Width": 0.2, "Height": 0.2, "Left": 0.4, "Top": 0.3}
    return [
        FaceRecord(face_id=i, image_id=f"img-{i}", vector=v, bounding_box=box, confidence=99.0, indexed_at=T0)
        for i, v in zip(ids, vectors, strict=True)
    ]


def load(store: EmbeddedStore, collection: str, data: np.ndarray, ids: list[str], batch: int) -> float:
    """Faces/s through add_faces (SQLite transaction + index insert, IVF training included)."""
    store.create_collection(CollectionRecord(collection, T0, "bench"))
    began = time.perf_counter()
    for s in range(0, len(data), batch):
        store.add_faces(collection, records(data[s : s + batch], ids[s : s + batch]))
    return len(data) / (time.perf_counter() - began)


def cell(store: EmbeddedStore, collection: str, queries: np.ndarray, clients: int, seconds: float, k: int) -> dict:
    """``clients`` threads searching for ``seconds``: throughput, latencies, cores used."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(c: int) -> None:
        i = c * 997
        out = latencies[c]
        try:
            start.wait()
            while True:
                t = time.perf_counter()
                if t >= deadline[0]:
                    return
                store.search(collection, queries[i % len(queries)], k=k)
                out.append((time.perf_counter() - t) * 1000)
                i += 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    workers = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for w in workers:
        w.start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    deadline[0] = wall0 + seconds
    start.wait()
    for w in workers:
        w.join()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if errors:
        raise errors[0]
    done = [x for per in latencies for x in per]
    return {"searches": len(done), "per_s": len(done) / wall, "cpu_per_wall": cpu / wall, "latencies_ms": done}


def summarise(cells: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [c["per_s"] for c in cells]
    lat = np.concatenate([np.asarray(c["latencies_ms"]) for c in cells])
    return {
        "searches_per_s": round(statistics.median(rates), 1),
        "searches_per_s_range": [round(min(rates), 1), round(max(rates), 1)],
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p95_ms": round(float(np.percentile(lat, 95)), 3),
        "cpu_per_wall": round(statistics.median(c["cpu_per_wall"] for c in cells), 2),
        "searches": int(sum(c["searches"] for c in cells)),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    clients = [int(c) for c in args.clients.split(",") if c.strip()]
    settings = thread_settings(args.faiss_threads)
    started = datetime.now(UTC)
    load_start = os.getloadavg()
    gen_args = bvs.parse_args(["--n", str(args.n), "--queries", str(args.queries), "--seed", str(args.seed)])
    data, queries = bvs.generate(gen_args)
    ids = bvs.face_ids(len(data), args.seed)
    own = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="bench-cs-")) if own else args.workdir
    report: dict[str, Any] = {}
    try:
        with EmbeddedStore(workdir / "store", checkpoint_every=10**9) as store:
            load_rates = {}
            for threads in settings:
                store.faiss_threads = threads
                load_rates[threads] = round(load(store, f"load-{threads}", data, ids, args.batch))
                print(f"load with faiss_threads={threads}: {load_rates[threads]} faces/s", file=sys.stderr)
            collection = f"load-{settings[0]}"
            for threads in settings[1:]:
                store.delete_collection(f"load-{threads}")
            stats = store.index_stats(collection)
            store.faiss_threads = settings[0]
            for i in range(args.warmup):
                store.search(collection, queries[i % len(queries)], k=args.k)
            raw: dict[tuple[int, int], list[dict[str, Any]]] = {(c, t): [] for c in clients for t in settings}
            for rep in range(args.reps):
                order = settings if rep % 2 == 0 else settings[::-1]
                for c in clients:
                    for threads in order:
                        store.faiss_threads = threads
                        result = cell(store, collection, queries, c, args.seconds, args.k)
                        raw[(c, threads)].append(result)
                        print(
                            f"rep {rep} clients {c} faiss_threads {threads}: {result['per_s']:.0f}/s "
                            f"cpu/wall {result['cpu_per_wall']:.2f}",
                            file=sys.stderr,
                        )
            results = [{"clients": c, "faiss_threads": t} | summarise(raw[(c, t)]) for c in clients for t in settings]
        report = {
            "benchmark": "concurrent_search",
            "started": started.isoformat(),
            "finished": datetime.now(UTC).isoformat(),
            "command": [sys.executable, *sys.argv],
            "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "faiss_thread_settings": settings,
            "index": {k: stats[k] for k in ("size", "nlist", "trained_size", "probe_fraction", "refine")},
            "load_faces_per_s": {str(k): v for k, v in load_rates.items()},
            "machine": bvs.machine() | {"cpu_affinity": cpu_count()},
            "load_average": {"start": load_start, "end": os.getloadavg()},
            "note": args.note,
            "git": bvs.git_state(),
            "results": results,
        }
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    out = args.out or bvs.REPO / "bench" / "results" / f"concurrent-search-{args.n}-{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(f"\nload average start {report['load_average']['start']}, end {report['load_average']['end']}; JSON: {out}")


def markdown(report: dict[str, Any]) -> str:
    settings = report["faiss_thread_settings"]
    base = settings[-1]  # faiss' own default (every core) is the baseline
    rows = [
        f"## Concurrent search: embedded, {report['index']['size']} faces, k={report['parameters']['k']}",
        "",
        "| client threads | faiss threads | searches/s (median; range) | vs faiss threads "
        f"= {base} | p50 / p95 ms | CPU s per s |",
        "|---|---|---|---|---|---|",
    ]
    by = {(r["clients"], r["faiss_threads"]): r for r in report["results"]}
    for r in report["results"]:
        ratio = r["searches_per_s"] / by[(r["clients"], base)]["searches_per_s"]
        lo, hi = r["searches_per_s_range"]
        rows.append(
            f"| {r['clients']} | {r['faiss_threads']} | {r['searches_per_s']} ({lo}–{hi}) | {ratio:.2f}× "
            f"| {r['p50_ms']} / {r['p95_ms']} | {r['cpu_per_wall']} |"
        )
    loads = ", ".join(f"faiss threads {k}: {v}" for k, v in report["load_faces_per_s"].items())
    rows += ["", f"add_faces faces/s while loading (batches of 5000, IVF training included): {loads}"]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
