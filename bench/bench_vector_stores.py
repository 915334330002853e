"""Benchmark the vector-store backends on synthetic dlib-like descriptors: indexing rate, search latency,
recall against exact brute force, memory.

Data (no model involved; every parameter is a flag). 128-d descriptors shaped like dlib's:

* identities: centres ~ N(0, diag(σ_c²·w)) with per-axis weights w ∝ (i+1)^-decay (``--spectrum-decay``;
  0 = isotropic, the hardest case for HNSW; real face embeddings have a decaying PCA spectrum);
* faces: centre + N(0, σ_n²) noise; σ_n and σ_c are derived from the wanted *typical* distances
  (``--intra`` ≈ 0.40 between two faces of one person, ``--inter`` ≈ 0.90 between two people — dlib's
  range, whose same-person threshold is 0.6), which gives norms ≈ 0.64 like dlib descriptors;
* faces per identity ~ 1 + Poisson(``--faces-per-identity`` − 1);
* stress option: a fraction ``--lowq-fraction`` of faces (default 0) shrunk by ``--lowq-shrink`` towards
  the mean face, as blurry/low-quality crops that slip past the quality filter would be. Such hubs
  fragment HNSW graphs (see src/facesearch/store/embedded.py): 0.02 is a useful stress setting;
* queries: fresh noisy samples of identities that have faces (a new photo of an enrolled person).

Ground truth is the exact top-k by float64 euclidean distance (float32 matmul shortlist, re-scored).

Backends (``--backends``, comma separated):

* ``numpy``: brute force baseline (float32 matmul over the whole matrix, exact re-scoring of a shortlist);
* ``embedded``: EmbeddedStore in a temporary directory (HNSW flags pass through);
* ``opensearch``: OpenSearchStore at ``--opensearch-url`` (a unique index prefix, deleted afterwards).

Each backend runs in its own child process, so its memory is its own: RSS growth while indexing (the data
set is loaded before the baseline is taken), peak RSS, and the index's own figure where the backend has
one. Metrics: bulk index faces/s through ``add_faces`` (batches of ``--batch``, as the API would), time to
close and reopen (embedded), search p50/p95/p99 ms for k=10 after a warm-up, recall@k, and match recall
(the share of true neighbours within ``--threshold`` that were returned). Every loop is bounded: at most
``--queries`` queries and ``--max-search-seconds`` per backend; children are killed after ``--timeout``.

Usage (repository root)::

    .venv/bin/python bench/bench_vector_stores.py --n 20000 --backends numpy,embedded          # smoke
    .venv/bin/python bench/bench_vector_stores.py --n 100000
    .venv/bin/python bench/bench_vector_stores.py --n 1000000 --backends numpy,embedded,opensearch \\
        --opensearch-url http://127.0.0.1:9200

Prints a markdown table and writes JSON (parameters, machine, load average, git state, per-backend
results) to ``bench/results/vector-stores-<n>-<UTC time>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DIM = 128
COLLECTION = "bench"


# -- data --------------------------------------------------------------------------------------------------
def generate(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors (n, 128) float32 and queries (q, 128) float32, deterministic in ``--seed``."""
    rng = np.random.default_rng(args.seed)
    sigma_n = args.intra / np.sqrt(2 * DIM)
    centre_var = args.inter**2 / 2 - DIM * sigma_n**2  # total centre variance over all axes
    if centre_var <= 0:
        raise SystemExit("--inter must be larger than --intra")
    weights = (np.arange(DIM) + 1.0) ** -args.spectrum_decay
    weights *= DIM / weights.sum()
    centre_std = np.sqrt(centre_var / DIM * weights)
    axes = np.linalg.qr(rng.normal(size=(DIM, DIM)))[0]  # the spectrum in a random basis

    counts = 1 + rng.poisson(max(args.faces_per_identity - 1, 0), size=args.n)
    ends = np.cumsum(counts)
    n_ids = int(np.searchsorted(ends, args.n) + 1)
    labels = np.repeat(np.arange(n_ids), counts[:n_ids])[: args.n]
    rng.shuffle(labels)
    centres = ((rng.normal(size=(n_ids, DIM)) * centre_std) @ axes.T).astype(np.float32)

    data = np.empty((args.n, DIM), dtype=np.float32)
    for s in range(0, args.n, 100_000):
        e = min(s + 100_000, args.n)
        data[s:e] = centres[labels[s:e]] + rng.normal(0, sigma_n, (e - s, DIM)).astype(np.float32)
    lowq = rng.random(args.n) < args.lowq_fraction
    data[lowq] *= np.float32(args.lowq_shrink)

    enrolled = labels[rng.integers(0, args.n, args.queries)]
    queries = (centres[enrolled] + rng.normal(0, sigma_n, (args.queries, DIM))).astype(np.float32)
    return data, queries


def exact_top_k(data: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (q, k) and float64 distances of the exact k nearest, nearest first."""
    norms = np.einsum("ij,ij->i", data, data)
    shortlist = k + 32
    idx_out = np.empty((len(queries), k), dtype=np.int64)
    dist_out = np.empty((len(queries), k))
    for s in range(0, len(queries), 64):
        q = queries[s : s + 64]
        d2 = norms[:, None] - 2 * (data @ q.T)  # (n, b) float32; |q|² is constant per column
        cand = np.argpartition(d2, min(shortlist, len(data) - 1), axis=0)[:shortlist].T
        for j, rows in enumerate(cand):
            exact = np.linalg.norm(data[rows].astype(np.float64) - q[j].astype(np.float64), axis=1)
            order = np.lexsort((rows, exact))[:k]
            idx_out[s + j], dist_out[s + j] = rows[order], exact[order]
    return idx_out, dist_out


# -- measurements ------------------------------------------------------------------------------------------
def rss_bytes() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return {"rss": out.get("VmRSS", 0), "peak_rss": out.get("VmHWM", 0)}


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {f"p{p}_ms": round(float(np.percentile(a, p)), 3) for p in (50, 95, 99)} | {"searches": len(ms)}


class NumpyBackend:
    """Exact brute force: what every ANN result is measured against, and its latency."""

    def __init__(self) -> None:
        self.size = 0
        self.matrix = np.empty((1024, DIM), np.float32)  # grows by doubling, like a real append-only matrix
        self.sq_norms = np.empty(1024, np.float32)

    def add(self, start: int, vectors: np.ndarray) -> None:
        end = self.size + len(vectors)
        if end > len(self.matrix):
            capacity = max(end, 2 * len(self.matrix))
            self.matrix = np.resize(self.matrix, (capacity, DIM))
            self.sq_norms = np.resize(self.sq_norms, capacity)
        self.matrix[self.size : end] = vectors
        self.sq_norms[self.size : end] = np.einsum("ij,ij->i", vectors, vectors)
        self.size = end

    def search(self, q: np.ndarray, k: int) -> list[int]:
        data = self.matrix[: self.size]
        d2 = self.sq_norms[: self.size] - 2 * (data @ q)
        rows = np.argpartition(d2, min(k + 32, len(d2) - 1))[: k + 32]
        exact = np.linalg.norm(data[rows].astype(np.float64) - q.astype(np.float64), axis=1)
        return rows[np.lexsort((rows, exact))[:k]].tolist()

    def memory(self) -> int:
        return int(self.matrix[: self.size].nbytes + self.sq_norms[: self.size].nbytes)

    def close(self) -> dict[str, Any]:
        return {}


class StoreBackend:
    """Any VectorStore, fed FaceRecords as the collection service would."""

    def __init__(self, name: str, args: argparse.Namespace, workdir: Path) -> None:
        from facesearch.store.records import CollectionRecord

        self.name, self.args, self.workdir = name, args, workdir
        if name == "embedded":
            from facesearch.store.embedded import EmbeddedStore

            self.options = {
                k: v
                for k, v in {
                    "connectivity": args.connectivity,
                    "expansion_add": args.expansion_add,
                    "expansion_search": args.expansion_search,
                    "exact_below": args.exact_below,
                }.items()
                if v is not None
            }
            self.store: Any = EmbeddedStore(workdir / "embedded", **self.options)
        else:
            if not args.opensearch_url:
                raise SystemExit("--opensearch-url is required for the opensearch backend")
            from facesearch.store.opensearch import OpenSearchStore

            self.store = OpenSearchStore(args.opensearch_url, index_prefix=f"bench-{uuid.uuid4().hex[:10]}-")
        self.store.create_collection(
            CollectionRecord(COLLECTION, datetime.now(UTC), "synthetic-dlib-like", threshold_floor=0.0)
        )
        self.now = datetime.now(UTC)

    def add(self, start: int, vectors: np.ndarray) -> None:
        from facesearch.store.records import FaceRecord

        box = {"Width": 0.2, "Height": 0.3, "Left": 0.4, "Top": 0.1}
        self.store.add_faces(
            COLLECTION,
            [
                FaceRecord(
                    face_id=f"{start + i:012d}",
                    image_id=f"img-{(start + i) // 4}",
                    vector=v,
                    bounding_box=box,
                    confidence=99.9,
                    indexed_at=self.now,
                    quality={"Brightness": 80.0, "Sharpness": 90.0},
                )
                for i, v in enumerate(vectors)
            ],
        )

    def search(self, q: np.ndarray, k: int) -> list[int]:
        return [int(h.face.face_id) for h in self.store.search(COLLECTION, q, k=k)]

    def memory(self) -> int | None:
        if self.name == "embedded":
            return int(self.store.index_stats(COLLECTION)["memory_bytes"])
        return None

    def close(self) -> dict[str, Any]:
        """Close (final index save for embedded) and, for embedded, time a reopen and report the files."""
        out: dict[str, Any] = {}
        if self.name == "embedded":
            from facesearch.store.embedded import EmbeddedStore

            t = time.perf_counter()
            self.store.close()
            out["close_s"] = round(time.perf_counter() - t, 2)
            t = time.perf_counter()
            self.store = EmbeddedStore(self.workdir / "embedded", **self.options)
            out["reopen_s"] = round(time.perf_counter() - t, 2)
            out["index_stats"] = self.store.index_stats(COLLECTION)
            out["disk_bytes"] = sum(p.stat().st_size for p in (self.workdir / "embedded").rglob("*") if p.is_file())
            self.store.close()
        else:
            try:
                self.store.delete_collection(COLLECTION)
            finally:
                self.store.close()
        return out


def run_backend(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Child process: index the data set, search the queries, measure."""
    data = np.load(workdir / "data.npy")
    queries = np.load(workdir / "queries.npy")
    truth = np.load(workdir / "truth_idx.npy")
    truth_d = np.load(workdir / "truth_dist.npy")
    before = rss_bytes()["rss"]
    backend: Any = NumpyBackend() if name == "numpy" else StoreBackend(name, args, workdir)

    t0 = time.perf_counter()
    for s in range(0, len(data), args.batch):
        backend.add(s, data[s : s + args.batch])
    index_s = time.perf_counter() - t0
    after_index = rss_bytes()
    result: dict[str, Any] = {
        "backend": name,
        "index_s": round(index_s, 2),
        "faces_per_s": round(len(data) / index_s),
        "rss_growth_mb": round((after_index["rss"] - before) / 2**20, 1),
        "index_memory_mb": None if backend.memory() is None else round(backend.memory() / 2**20, 1),
    }

    for q in queries[: min(20, len(queries))]:  # warm-up
        backend.search(q, args.k)
    latencies: list[float] = []
    found = total = match_found = match_total = 0
    deadline = time.perf_counter() + args.max_search_seconds
    for i, q in enumerate(queries):
        t = time.perf_counter()
        got = backend.search(q, args.k)
        latencies.append((time.perf_counter() - t) * 1000)
        true_ids = truth[i, : args.k]
        found += len(set(got) & set(true_ids.tolist()))
        total += len(true_ids)
        matches = true_ids[truth_d[i, : args.k] <= args.threshold].tolist()
        match_found += len(set(got) & set(matches))
        match_total += len(matches)
        if time.perf_counter() > deadline:
            break
    result |= percentiles(latencies)
    result["recall_at_k"] = round(found / total, 4)
    result["match_recall"] = round(match_found / match_total, 4) if match_total else None
    result["matches"] = match_total
    result |= backend.close()
    result["peak_rss_mb"] = round(rss_bytes()["peak_rss"] / 2**20, 1)
    return result


# -- driver ------------------------------------------------------------------------------------------------
def git_state() -> dict[str, Any]:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def markdown(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    cols = [
        ("backend", "backend"),
        ("faces/s", "faces_per_s"),
        ("p50 ms", "p50_ms"),
        ("p95 ms", "p95_ms"),
        ("p99 ms", "p99_ms"),
        (f"recall@{args.k}", "recall_at_k"),
        (f"match recall (≤{args.threshold})", "match_recall"),
        ("index MB", "index_memory_mb"),
        ("RSS growth MB", "rss_growth_mb"),
        ("peak RSS MB", "peak_rss_mb"),
        ("searches", "searches"),
    ]
    lines = ["| " + " | ".join(c for c, _ in cols) + " |", "|" + "---|" * len(cols)]
    for r in results:
        lines.append("| " + " | ".join("—" if r.get(key) is None else str(r.get(key)) for _, key in cols) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="faces to index (e.g. 100000, 1000000)")
    p.add_argument("--queries", type=int, default=1000, help="search queries (at most)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batch", type=int, default=1000, help="faces per add_faces call")
    p.add_argument("--backends", default="numpy,embedded", help="comma separated: numpy,embedded,opensearch")
    p.add_argument("--opensearch-url", default=os.environ.get("FACESEARCH_OPENSEARCH_URL"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--intra", type=float, default=0.40, help="typical distance between two faces of one person")
    p.add_argument("--inter", type=float, default=0.90, help="typical distance between two people")
    p.add_argument("--faces-per-identity", type=float, default=3.0, help="mean faces per identity (>= 1)")
    p.add_argument("--spectrum-decay", type=float, default=0.0, help="centre variance ∝ (axis+1)^-decay")
    p.add_argument("--lowq-fraction", type=float, default=0.0, help="share of faces shrunk towards the mean")
    p.add_argument("--lowq-shrink", type=float, default=0.5, help="their scale factor towards the mean")
    p.add_argument("--threshold", type=float, default=0.6, help="match distance for match recall")
    p.add_argument("--connectivity", type=int, help="embedded: HNSW connectivity (M)")
    p.add_argument("--expansion-add", type=int, help="embedded: ef_construction")
    p.add_argument("--expansion-search", type=int, help="embedded: ef_search")
    p.add_argument("--exact-below", type=int, help="embedded: exact scan below this many faces")
    p.add_argument("--max-search-seconds", type=float, default=60.0, help="search time budget per backend")
    p.add_argument("--timeout", type=float, default=3600.0, help="kill a backend's child after this many s")
    p.add_argument("--workdir", type=Path, help="where data and stores go (default: a temporary directory)")
    p.add_argument("--out", type=Path, help="JSON path (default bench/results/vector-stores-<n>-<time>.json)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_backend(args.worker, args, args.workdir)))
        return

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"numpy", "embedded", "opensearch"}
    if unknown:
        raise SystemExit(f"unknown backends: {sorted(unknown)}")
    started = datetime.now(UTC)
    load_start = os.getloadavg()
    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="bench-vs-")) if own_workdir else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        data, queries = generate(args)
        gen_s = time.perf_counter() - t
        t = time.perf_counter()
        truth_idx, truth_dist = exact_top_k(data, queries, args.k)
        truth_s = time.perf_counter() - t
        same = np.linalg.norm(data[:2000:2] - data[1:2000:2], axis=1)
        print(
            f"data: {args.n} faces, {len(queries)} queries, generated in {gen_s:.1f}s, truth in {truth_s:.1f}s; "
            f"mean norm {np.linalg.norm(data[:10000], axis=1).mean():.3f}, "
            f"random-pair distance {np.median(same):.3f}, nearest-neighbour distance (queries) "
            f"{np.median(truth_dist[:, 0]):.3f}",
            file=sys.stderr,
        )
        for name, arr in [("data", data), ("queries", queries), ("truth_idx", truth_idx), ("truth_dist", truth_dist)]:
            np.save(workdir / f"{name}.npy", arr)
        del data

        results = []
        for name in backends:
            print(f"running {name} ...", file=sys.stderr)
            cmd = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])]
            cmd += ["--worker", name, "--workdir", str(workdir)]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                results.append({"backend": name, "error": f"timed out after {args.timeout}s"})
                continue
            if proc.returncode != 0:
                results.append({"backend": name, "error": proc.stderr.strip().splitlines()[-1:]})
                print(proc.stderr, file=sys.stderr)
                continue
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"  {results[-1]}", file=sys.stderr)
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    report = {
        "benchmark": "vector_stores",
        "started": started.isoformat(),
        "command": [sys.executable, *sys.argv],
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "worker"},
        "data": {"generate_s": round(gen_s, 2), "truth_s": round(truth_s, 2)},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "git": git_state(),
        "results": results,
    }
    try:
        import usearch

        report["versions"] = {"numpy": np.__version__, "usearch": usearch.__version__}
    except ImportError:
        report["versions"] = {"numpy": np.__version__}
    out = args.out or REPO / "bench" / "results" / f"vector-stores-{args.n}-{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"## Vector stores: {args.n} faces, k={args.k}, {len(queries)} queries\n")
    print(markdown(results, args))
    print(f"\nload average start {load_start}, end {os.getloadavg()}; JSON: {out}")


if __name__ == "__main__":
    main()
