"""Benchmark the vector-store backends on synthetic dlib-like descriptors: indexing rate, search latency,
recall against exact brute force, memory.

Data (every parameter is a flag). 128-d descriptors shaped like dlib's, face = identity centre + noise:

* ``--shape real`` (default): centre and noise covariances *measured* on our engine's descriptors of real
  faces — between people from every face of the crowd photo (hundreds of different people), within a person
  from faces-dev's 13 identities (shrunk 25 % towards isotropic) — then scaled to the typical distances below.
  Real descriptors are far from isotropic: ~24 effective dimensions of 128 (reported as ``effective_dims``);
* ``--shape synthetic``: centres ~ N(0, diag(σ_c²·w)) in a random basis with per-axis weights
  w ∝ (i+1)^-decay (``--spectrum-decay``; 0 = isotropic, the hardest case for HNSW), isotropic noise;
* both scaled so two photos of one person are ``--intra`` ≈ 0.40 apart and two people ``--inter`` ≈ 0.90
  (faces-dev measures medians of 0.38 and 0.88; dlib's same-person threshold is 0.6);
* faces per identity ~ 1 + Poisson(``--faces-per-identity`` − 1);
* stress option: a fraction ``--lowq-fraction`` of faces (default 0) shrunk by ``--lowq-shrink`` towards
  the mean face, as blurry/low-quality crops that slip past the quality filter would be. Such hubs
  fragment HNSW graphs (see src/facesearch/store/embedded/store.py): 0.02 is a useful stress setting;
* queries: fresh noisy samples of identities that have faces (a new photo of an enrolled person).

Ground truth is the exact top-k by float64 euclidean distance (float32 matmul shortlist, re-scored).

Backends (``--backends``, comma separated):

* ``numpy``: brute force baseline (float32 matmul over the whole matrix, exact re-scoring of a shortlist);
* ``embedded``: EmbeddedStore in a temporary directory (IVF flags pass through);
* ``opensearch``: OpenSearchStore at ``--opensearch-url`` (a unique index prefix, deleted afterwards);
  ``--opensearch-url local`` starts facesearch.devtools.opensearch_local for the run (``--opensearch-heap``).
  It is loaded the way an import would: ``bulk_load`` (no refresh per call) and a force merge to
  ``--os-max-segments`` (bounded by ``--os-merge-timeout``; ``--os-load-budget`` stops a load that takes too
  long and measures against what was loaded); the store's own path (``add_faces`` with ``wait_for``) is
  timed separately on ``--os-store-sample`` faces.

``--real-faces [DIR]`` (default: ../shared/datasets/faces-dev/images) adds our engine's descriptors of the
largest face of every image (computed once, cached in ~/.cache/facesearch/bench/) to the gallery at random
positions and uses them as extra queries, reported as ``real_*``; the synthetic data is translated to the
real descriptors' mean so they sit among synthetic faces (no synthetic distance changes). Face ids are
random UUIDs, as the service makes them.

Each backend runs in its own child process, so its memory is its own: RSS growth while indexing (the data
set is loaded before the baseline is taken), peak RSS, and the index's own figure where the backend has
one (OpenSearch: the JVM's RSS and the index's bytes on disk). Metrics: bulk index faces/s (embedded:
``add_faces`` in batches of ``--batch``), time to close and reopen (embedded), search p50/p95/p99 ms for k=10
after ``--warmup`` searches (default 200), one query at a time (numpy on one BLAS thread), recall@k, top-1,
and match recall (the share of true neighbours within ``--threshold`` that were returned), ``--sweep-probe``
(embedded IVF probe fractions) and ``--sweep-ef`` (OpenSearch ef_search): recall/latency at other search
beams on the same index, the seconds of ``--deletes`` delete_faces calls, and the latency of ``--single-adds`` one-face
add_faces calls. Every search loop is bounded: at most ``--queries`` queries and ``--max-search-seconds``
per backend; children are killed after ``--timeout``.

Usage (repository root; the commands behind BENCHMARKS.md)::

    .venv/bin/python bench/bench_vector_stores.py --n 20000 --backends numpy,embedded          # smoke
    .venv/bin/python bench/bench_vector_stores.py --n 100000 --backends numpy,embedded,opensearch \
        --opensearch-url local --real-faces --sweep-ef 64,128,256,512 --sweep-probe 0.125,0.1875,0.25,0.375
    .venv/bin/python bench/bench_vector_stores.py --n 1000000 --backends numpy,embedded,opensearch \
        --opensearch-url local --opensearch-heap 8g --real-faces --sweep-ef 64,128,256,512 \
        --sweep-probe 0.125,0.1875,0.25,0.375 --os-merge-timeout 2400 --timeout 5000
    # the isotropic worst case of the first runs: add --shape synthetic

Prints a markdown table and writes JSON (parameters, machine, load average, git state, per-backend
results) to ``bench/results/vector-stores-<n>-<UTC time>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
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
DEV_FACES = REPO.parent / "shared" / "datasets" / "faces-dev" / "images"
CROWD_PHOTO = REPO.parent / "shared" / "datasets" / "crowd" / "largest_selfie.jpg"


# -- data --------------------------------------------------------------------------------------------------
def generate(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors (n, 128) float32 and queries (q, 128) float32, deterministic in ``--seed``."""
    rng = np.random.default_rng(args.seed)
    if args.shape == "real":
        centre_factor, noise_factor = real_shape(args)
    else:
        centre_factor, noise_factor = isotropic_shape(args, rng)

    counts = 1 + rng.poisson(max(args.faces_per_identity - 1, 0), size=args.n)
    ends = np.cumsum(counts)
    n_ids = int(np.searchsorted(ends, args.n) + 1)
    labels = np.repeat(np.arange(n_ids), counts[:n_ids])[: args.n]
    rng.shuffle(labels)
    centres = (rng.normal(size=(n_ids, DIM)) @ centre_factor.T).astype(np.float32)

    def noise(m: int) -> np.ndarray:
        return (rng.normal(size=(m, DIM)) @ noise_factor.T).astype(np.float32)

    data = np.empty((args.n, DIM), dtype=np.float32)
    for s in range(0, args.n, 100_000):
        e = min(s + 100_000, args.n)
        data[s:e] = centres[labels[s:e]] + noise(e - s)
    lowq = rng.random(args.n) < args.lowq_fraction
    data[lowq] *= np.float32(args.lowq_shrink)

    enrolled = labels[rng.integers(0, args.n, args.queries)]
    queries = (centres[enrolled] + noise(args.queries)).astype(np.float32)
    return data, queries


def isotropic_shape(args: argparse.Namespace, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``--shape synthetic``: centre variance ∝ (axis+1)^-decay in a random basis, isotropic noise."""
    sigma_n = args.intra / np.sqrt(2 * DIM)
    centre_var = args.inter**2 / 2 - DIM * sigma_n**2  # total centre variance over all axes
    if centre_var <= 0:
        raise SystemExit("--inter must be larger than --intra")
    weights = (np.arange(DIM) + 1.0) ** -args.spectrum_decay
    weights *= DIM / weights.sum()
    axes = np.linalg.qr(rng.normal(size=(DIM, DIM)))[0]  # the spectrum in a random basis
    return axes * np.sqrt(centre_var / DIM * weights), np.eye(DIM) * sigma_n


def real_shape(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """``--shape real``: covariances measured on our engine's descriptors of real faces, scaled to the wanted
    typical distances. Returns factors F with F Fᵀ = the centre and the noise covariance.

    * between people: the covariance of every face in the crowd photo (hundreds of different people), i.e.
      its directions and spectrum (dlib descriptors use ~24 effective dimensions, not 128);
    * within a person: the pooled within-identity covariance of faces-dev's single-face photos (13 people),
      shrunk 25 % towards isotropic because 48 degrees of freedom cannot cover 128 dimensions;
    * scaled so two photos of one person are ``--intra`` apart on average (root mean square) and two people
      ``--inter`` (faces-dev measures 0.38 and 0.88 as medians; the defaults are 0.40 and 0.90).
    """
    crowd = real_descriptors(args.crowd_photo.parent, all_faces=True, only=args.crowd_photo.name)[1]
    names, dev = real_descriptors(args.real_faces_for_shape)
    from facesearch.evaluation import load_labelled_set

    identities = load_labelled_set(args.real_faces_for_shape.parent).identities
    keep = np.array([len(identities.get(n, [])) == 1 for n in names])  # single-person photos only
    dev, labels = dev[keep], np.array([identities[n][0] for n in np.array(names)[keep]])
    residual = np.concatenate([dev[labels == p] - dev[labels == p].mean(0) for p in np.unique(labels)])
    within = residual.T @ residual / (len(dev) - len(np.unique(labels)))
    within = 0.75 * within + 0.25 * np.trace(within) / DIM * np.eye(DIM)
    between = np.cov(crowd, rowvar=False)
    within *= args.intra**2 / 2 / np.trace(within)
    centre_var = args.inter**2 / 2 - np.trace(within)
    if centre_var <= 0:
        raise SystemExit("--inter must be larger than --intra")
    between *= centre_var / np.trace(between)

    def factor(cov: np.ndarray) -> np.ndarray:
        values, vectors = np.linalg.eigh(cov)
        return vectors * np.sqrt(np.clip(values, 0, None))

    return factor(between), factor(within)


def effective_dims(x: np.ndarray) -> float:
    """(Σλ)² / Σλ² of the covariance spectrum: 128 for isotropic data, ~24 for real dlib descriptors."""
    values = np.clip(np.linalg.eigvalsh(np.cov(x, rowvar=False)), 0, None)
    return float(values.sum() ** 2 / (values**2).sum())


def real_descriptors(folder: Path, *, all_faces: bool = False, only: str | None = None) -> tuple[list[str], np.ndarray]:
    """Descriptors of the largest face (``all_faces``: of every face) of every image in ``folder`` (or just
    ``only``), computed by our engine once and cached in ~/.cache/facesearch/bench/ (keyed by the images', the
    models' and the engine's settings)."""
    from facesearch.engine.engine import MIN_FACE_FRACTION
    from facesearch.models.registry import ARTIFACTS

    images = sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and only in (None, p.name)
    )
    key = hashlib.sha256(json.dumps([ARTIFACTS, MIN_FACE_FRACTION, all_faces], sort_keys=True).encode())
    for p in images:
        key.update(p.name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    cache = Path.home() / ".cache" / "facesearch" / "bench" / f"descriptors-{folder.name}-{key.hexdigest()[:16]}.npz"
    if cache.is_file():
        z = np.load(cache)
        return [str(n) for n in z["names"]], z["vectors"]
    from facesearch.engine.engine import FaceEngine

    engine = FaceEngine()
    names, vectors = [], []
    for p in images:
        faces = [f for f in engine.analyze(p.read_bytes()).faces if f.descriptor is not None]
        for face in faces if all_faces else faces[:1]:
            names.append(p.name)
            vectors.append(np.asarray(face.descriptor, dtype=np.float32))
        if not faces:
            print(f"  {p.name}: no face, skipped", file=sys.stderr)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, names=np.array(names), vectors=np.stack(vectors))
    return names, np.stack(vectors)


def face_ids(n: int, seed: int) -> list[str]:
    """Random UUIDs, as the collection service generates them (append-only ids would flatter B-trees)."""
    rng = np.random.default_rng(seed + 1)
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return [str(uuid.UUID(bytes=b.tobytes())) for b in raw]


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


def _faiss_threads(value: str | None) -> int | None:
    """``--faiss-threads``/``--train-threads``: None leaves the store's default; 'cores': every core of the mask."""
    if value is None:
        return None
    return len(os.sched_getaffinity(0)) if value == "cores" else int(value)


class StoreBackend:
    """Any VectorStore, fed FaceRecords as the collection service would."""

    def __init__(self, name: str, args: argparse.Namespace, workdir: Path, ids: list[str]) -> None:
        self.name, self.args, self.workdir, self.ids = name, args, workdir, ids
        self.row_of = {face_id: row for row, face_id in enumerate(ids)}
        if name == "embedded":
            from facesearch.store.embedded import EmbeddedStore

            self.options = {
                k: v
                for k, v in {
                    "probe_fraction": args.probe_fraction,
                    "refine": args.refine,
                    "max_lists": args.max_lists,
                    "exact_below": args.exact_below,
                    "candidates_min": args.candidates_min,
                    "faiss_threads": _faiss_threads(args.faiss_threads),
                    "train_threads": _faiss_threads(args.train_threads),
                }.items()
                if v is not None
            }
            self.store: Any = EmbeddedStore(workdir / "embedded", **self.options)
        else:
            if not args.opensearch_url:
                raise SystemExit("--opensearch-url is required for the opensearch backend")
            from facesearch.store.opensearch import OpenSearchStore

            self.options = {
                k: v
                for k, v in {
                    "hnsw_m": args.os_m,
                    "hnsw_ef_construction": args.os_ef_construction,
                    "ef_search": args.os_ef_search,
                    "candidates_min": args.os_candidates_min,
                }.items()
                if v is not None
            }
            self.store = OpenSearchStore(
                args.opensearch_url, index_prefix=f"bench-{uuid.uuid4().hex[:10]}-", timeout=120.0, **self.options
            )
        self.collection = COLLECTION
        self.store.create_collection(self._record(COLLECTION))
        self.now = datetime.now(UTC)

    @staticmethod
    def _record(collection_id: str) -> Any:
        from facesearch.store.records import CollectionRecord

        return CollectionRecord(collection_id, datetime.now(UTC), "synthetic-dlib-like", threshold_floor=0.0)

    def records(self, start: int, vectors: np.ndarray, ids: list[str] | None = None) -> list[Any]:
        from facesearch.store.records import FaceRecord

        box = {"Width": 0.2, "Height": 0.3, "Left": 0.4, "Top": 0.1}
        ids = ids if ids is not None else self.ids[start : start + len(vectors)]
        return [
            FaceRecord(
                face_id=face_id,
                image_id=f"img-{(start + i) // 4}",
                vector=v,
                bounding_box=box,
                confidence=99.9,
                indexed_at=self.now,
                quality={"Brightness": 80.0, "Sharpness": 90.0},
            )
            for i, (face_id, v) in enumerate(zip(ids, vectors, strict=True))
        ]

    def add(self, start: int, vectors: np.ndarray) -> None:
        self.store.add_faces(self.collection, self.records(start, vectors))

    def bulk_load(self, data: np.ndarray) -> dict[str, Any]:
        """OpenSearch's bulk path: bulk_load (no per-call refresh, 2 concurrent bulks) + force merge."""
        batch = self.args.batch
        began = time.perf_counter()
        self.loaded = 0

        def faces() -> Any:
            for s in range(0, len(data), batch):
                if self.args.os_load_budget and time.perf_counter() - began > self.args.os_load_budget:
                    return  # out of time: what is loaded is a uniform sample (the rows are in random order)
                yield from self.records(s, data[s : s + batch])
                self.loaded = min(s + batch, len(data))

        timings = self.store.bulk_load(self.collection, faces(), chunk_size=self.args.os_chunk, max_segments=None)
        out: dict[str, Any] = {f"bulk_{k}": round(v, 1) for k, v in timings.items()}
        out["segments_before_merge"] = self.store.segment_stats(self.collection)["segments"]
        if self.args.os_max_segments:
            from opensearchpy.exceptions import ConnectionTimeout

            t = time.perf_counter()
            try:
                self.store.optimize(
                    self.collection, max_segments=self.args.os_max_segments, timeout=self.args.os_merge_timeout
                )
            except ConnectionTimeout:  # the merge goes on in the server; searches below run alongside it
                out["merge_timed_out"] = True
            out["bulk_merge_s"] = round(time.perf_counter() - t, 1)
        return out

    def store_path_sample(self, data: np.ndarray) -> dict[str, Any]:
        """OpenSearch: add_faces (refresh=wait_for per call) into an empty scratch collection, timed."""
        n = min(len(data), self.args.os_store_sample)
        scratch = "bench-store-path"
        self.store.create_collection(self._record(scratch))
        try:
            t = time.perf_counter()
            for s in range(0, n, self.args.os_store_batch):
                vectors = data[s : min(s + self.args.os_store_batch, n)]
                self.store.add_faces(scratch, self.records(s, vectors))
            elapsed = time.perf_counter() - t
        finally:
            self.store.delete_collection(scratch)
        return {
            "store_path_faces": n,
            "store_path_batch": self.args.os_store_batch,
            "store_path_faces_per_s": round(n / elapsed),
        }

    def search(self, q: np.ndarray, k: int) -> list[int]:
        return [self.row_of.get(h.face.face_id, -1) for h in self.store.search(self.collection, q, k=k)]

    def set_beam(self, beam: float) -> None:
        """The recall/latency knob: embedded IVF probe fraction, OpenSearch HNSW ef_search."""
        if self.name == "embedded":
            self.store.set_probe_fraction(beam)
        else:
            self.store.ef_search = int(beam)

    def beam_sweep(
        self, queries: np.ndarray, truth: np.ndarray, group: list[int], args: argparse.Namespace
    ) -> list[dict[str, Any]]:
        """Recall and latency of the synthetic queries at other search beams (same index, no reload)."""
        embedded = self.name == "embedded"
        default = self.store.probe_fraction if embedded else self.store.ef_search
        beams = (
            [float(x) for x in args.sweep_probe.split(",")] if embedded else [int(x) for x in args.sweep_ef.split(",")]
        )
        out = []
        try:
            for ef in beams:
                self.set_beam(ef)
                rows = range(group[0], min(group[1], group[0] + args.sweep_queries))
                for i in rows[:10]:  # warm-up
                    self.search(queries[i], args.k)
                ms, found = [], 0
                for i in rows:
                    t = time.perf_counter()
                    got = self.search(queries[i], args.k)
                    ms.append((time.perf_counter() - t) * 1000)
                    found += len(set(got) & set(truth[i, : args.k].tolist()))
                out.append({"ef": ef, "recall_at_k": round(found / (len(ms) * args.k), 4)} | percentiles(ms))
                print(f"  {self.name} ef={ef}: {out[-1]}", file=sys.stderr, flush=True)
        finally:
            self.set_beam(default)
        return out

    def single_adds(self, vectors: np.ndarray) -> dict[str, Any]:
        """Latency of add_faces with one face (an IndexFaces call) on the loaded collection."""
        ms = []
        for i, v in enumerate(vectors):
            face_id = str(uuid.uuid4())
            t = time.perf_counter()
            self.store.add_faces(self.collection, self.records(len(self.ids) + i, v[None], [face_id]))
            ms.append((time.perf_counter() - t) * 1000)
        return {
            "add1_p50_ms": round(float(np.percentile(ms, 50)), 2),
            "add1_p95_ms": round(float(np.percentile(ms, 95)), 2),
        }

    def deletes(self, sizes: list[int]) -> dict[str, float]:
        """Seconds per delete_faces call of each size, on the loaded collection (the searches are done). The
        oldest faces go first: embedded, they are in the saved index file, which the call must then rewrite so
        they leave the disk (the worst case; faces added after the last save cost nothing to erase)."""
        out, start = {}, 0
        for size in sizes:
            victims, start = self.ids[start : start + size], start + size
            t = time.perf_counter()
            deleted = self.store.delete_faces(self.collection, victims)
            out[str(size)] = round(time.perf_counter() - t, 3)
            if len(deleted) != size:
                raise RuntimeError(f"deleted {len(deleted)} of {size} faces")
        return out

    def memory(self) -> int | None:
        if self.name == "embedded":
            return int(self.store.index_stats(self.collection)["memory_bytes"])
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
            out["index_stats"] = self.store.index_stats(self.collection)
            out["disk_bytes"] = sum(p.stat().st_size for p in (self.workdir / "embedded").rglob("*") if p.is_file())
            self.store.close()
        else:
            try:
                out["segments"] = self.store.segment_stats(self.collection)
                out["disk_bytes"] = out["segments"]["store_bytes"]
                self.store.delete_collection(self.collection)
            finally:
                self.store.close()
        return out


def proc_memory(pid: int) -> dict[str, int]:
    out = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def run_backend(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Child process: index the data set, search the queries, measure."""
    data = np.load(workdir / "data.npy")
    queries = np.load(workdir / "queries.npy")
    truth = np.load(workdir / "truth_idx.npy")
    truth_d = np.load(workdir / "truth_dist.npy")
    groups: dict[str, list[int]] = json.loads((workdir / "groups.json").read_text())
    ids = (workdir / "ids.txt").read_text().split()
    before = rss_bytes()["rss"]
    backend: Any = NumpyBackend() if name == "numpy" else StoreBackend(name, args, workdir, ids)
    result: dict[str, Any] = {"backend": name}
    if name != "numpy":
        result["options"] = backend.options

    if name == "opensearch":
        if args.os_store_sample > 0:
            result |= backend.store_path_sample(data)
        t0 = time.perf_counter()
        result |= backend.bulk_load(data)
        index_s = time.perf_counter() - t0
        result["load_path"] = f"bulk_load (chunks of {args.os_chunk}, 2 threads) + force merge"
        if backend.loaded < len(data):  # --os-load-budget ran out: measure against the loaded prefix
            print(f"  loaded {backend.loaded} of {len(data)} faces within the budget", file=sys.stderr)
            result |= {"faces_loaded": backend.loaded, "partial": True}
            data = data[: backend.loaded]
            truth, truth_d = exact_top_k(data, queries, args.k)
    else:
        t0 = time.perf_counter()
        for s in range(0, len(data), args.batch):
            backend.add(s, data[s : s + args.batch])
        index_s = time.perf_counter() - t0
        result["load_path"] = f"add_faces, batches of {args.batch}" if name == "embedded" else "append (1 thread)"
    after_index = rss_bytes()
    result |= {
        "index_s": round(index_s, 2),
        "faces_per_s": round(len(data) / index_s),
        "rss_growth_mb": round((after_index["rss"] - before) / 2**20, 1),
        "index_memory_mb": None if backend.memory() is None else round(backend.memory() / 2**20, 1),
    }
    if name == "opensearch" and args.opensearch_pid:
        result["server_rss_mb"] = round(proc_memory(args.opensearch_pid).get("VmRSS", 0) / 2**20, 1)

    # Warm-up on fresh noisy queries (not the measured ones): right after a merge the index files are cold.
    rng = np.random.default_rng(args.seed + 11)
    for row in rng.integers(0, len(data), args.warmup):
        backend.search(data[row] + rng.normal(0, 0.02, DIM).astype(np.float32), args.k)
    deadline = time.perf_counter() + args.max_search_seconds
    for group in ("real", "synthetic"):  # the few real queries first, so the time budget never skips them
        if group not in groups:
            continue
        latencies: list[float] = []
        found = total = match_found = match_total = top1 = 0
        for i in range(*groups[group]):
            t = time.perf_counter()
            got = backend.search(queries[i], args.k)
            latencies.append((time.perf_counter() - t) * 1000)
            true_ids = truth[i, : args.k]
            found += len(set(got) & set(true_ids.tolist()))
            total += len(true_ids)
            top1 += bool(got) and got[0] == true_ids[0]
            matches = true_ids[truth_d[i, : args.k] <= args.threshold].tolist()
            match_found += len(set(got) & set(matches))
            match_total += len(matches)
            if time.perf_counter() > deadline:
                break
        prefix = "" if group == "synthetic" else "real_"
        result |= {prefix + k: v for k, v in percentiles(latencies).items()}
        result[prefix + "recall_at_k"] = round(found / total, 4)
        result[prefix + "top1"] = round(top1 / len(latencies), 4)
        result[prefix + "match_recall"] = round(match_found / match_total, 4) if match_total else None
        result[prefix + "matches"] = match_total
    if (name == "embedded" and args.sweep_probe) or (name == "opensearch" and args.sweep_ef):
        result["ef_sweep"] = backend.beam_sweep(queries, truth, groups["synthetic"], args)
    if name != "numpy" and args.single_adds > 0:
        rng = np.random.default_rng(args.seed + 7)
        extra = data[rng.integers(0, len(data), args.single_adds)] + rng.normal(0, 0.02, (args.single_adds, DIM))
        result |= backend.single_adds(extra.astype(np.float32))
    if name != "numpy" and args.deletes:
        result["delete_s"] = backend.deletes([int(x) for x in args.deletes.split(",")])
    if name == "opensearch" and args.opensearch_pid:
        result["server_peak_rss_mb"] = round(proc_memory(args.opensearch_pid).get("VmHWM", 0) / 2**20, 1)
    result |= backend.close()
    result["peak_rss_mb"] = round(rss_bytes()["peak_rss"] / 2**20, 1)
    return result


# -- driver ------------------------------------------------------------------------------------------------
def git_state() -> dict[str, Any]:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    mem = next(
        int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line
    )
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "ram_gb": round(mem / 2**30, 1),
        "python": platform.python_version(),
    }


def _ratio(value: Any, base: Any, invert: bool = False) -> str:
    if not value or not base:
        return "—"
    r = base / value if invert else value / base
    return f"{r:.2g}×" if r < 10 else f"{r:.0f}×"


def markdown(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """One table, backends side by side; ratios are against numpy brute force in the same run."""
    base = next((r for r in results if r.get("backend") == "numpy" and "error" not in r), {})
    rows: list[tuple[str, Any]] = [
        ("load path", lambda r: r.get("load_path")),
        ("faces loaded (when a load budget ran out)", lambda r: r.get("faces_loaded")),
        ("bulk faces/s", lambda r: r.get("faces_per_s")),
        ("force merge timed out (merging during searches)", lambda r: r.get("merge_timed_out")),
        ("store-path faces/s (add_faces, wait_for)", lambda r: r.get("store_path_faces_per_s")),
        ("search p50 ms", lambda r: r.get("p50_ms")),
        ("search p95 ms", lambda r: r.get("p95_ms")),
        ("search p99 ms", lambda r: r.get("p99_ms")),
        ("p95 speed-up vs numpy", lambda r: _ratio(r.get("p95_ms"), base.get("p95_ms"), invert=True)),
        (f"recall@{args.k} (synthetic)", lambda r: r.get("recall_at_k")),
        (f"match recall ≤{args.threshold} (synthetic)", lambda r: r.get("match_recall")),
        (f"real faces: recall@{args.k}", lambda r: r.get("real_recall_at_k")),
        ("real faces: top-1 = exact", lambda r: r.get("real_top1")),
        ("real faces: search p95 ms", lambda r: r.get("real_p95_ms")),
        (
            "add_faces(1 face) p50 / p95 ms",
            lambda r: r.get("add1_p50_ms") and f"{r['add1_p50_ms']} / {r['add1_p95_ms']}",
        ),
        (
            "delete_faces s per call (--deletes sizes)",
            lambda r: r.get("delete_s") and " / ".join(str(v) for v in r["delete_s"].values()),
        ),
        ("index MB (own figure)", lambda r: r.get("index_memory_mb")),
        ("client RSS growth MB", lambda r: r.get("rss_growth_mb")),
        (
            "memory vs numpy matrix",
            lambda r: _ratio(r.get("index_memory_mb") or r.get("server_rss_mb"), base.get("index_memory_mb")),
        ),
        (
            "server RSS MB (JVM, after load / peak)",
            lambda r: r.get("server_rss_mb") and f"{r['server_rss_mb']} / {r.get('server_peak_rss_mb')}",
        ),
        ("on disk MB", lambda r: r.get("disk_bytes") and round(r["disk_bytes"] / 2**20)),
        ("searches (synthetic)", lambda r: r.get("searches")),
    ]
    head = "| metric | " + " | ".join(r.get("backend", "?") for r in results) + " |"
    lines = [head, "|---|" + "---|" * len(results)]
    for label, get in rows:
        cells = []
        for r in results:
            v = "error" if r.get("error") else get(r)
            cells.append("—" if v is None or v == "" else str(v))
        if any(c != "—" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="synthetic faces to index (e.g. 100000, 1000000)")
    p.add_argument("--queries", type=int, default=1000, help="synthetic search queries (at most)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batch", type=int, default=5000, help="faces per add_faces call (bulk import batches)")
    p.add_argument("--backends", default="numpy,embedded", help="comma separated: numpy,embedded,opensearch")
    p.add_argument(
        "--opensearch-url",
        default=os.environ.get("FACESEARCH_OPENSEARCH_URL"),
        help="a running server, or 'local' to start facesearch.devtools.opensearch_local for the run",
    )
    p.add_argument("--opensearch-heap", default="4g", help="JVM heap of a 'local' server")
    p.add_argument(
        "--real-faces",
        nargs="?",
        type=Path,
        const=DEV_FACES,
        help=f"also index the engine's descriptors of these images and use them as queries (default {DEV_FACES})",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--intra", type=float, default=0.40, help="typical distance between two faces of one person")
    p.add_argument("--inter", type=float, default=0.90, help="typical distance between two people")
    p.add_argument("--faces-per-identity", type=float, default=3.0, help="mean faces per identity (>= 1)")
    p.add_argument(
        "--shape",
        choices=("real", "synthetic"),
        default="real",
        help="real: covariances measured on real descriptors (crowd photo, faces-dev); synthetic: --spectrum-decay",
    )
    p.add_argument("--crowd-photo", type=Path, default=CROWD_PHOTO, help="--shape real: between-people covariance")
    p.add_argument(
        "--real-faces-for-shape", type=Path, default=DEV_FACES, help="--shape real: within-person covariance"
    )
    p.add_argument(
        "--spectrum-decay", type=float, default=0.0, help="--shape synthetic: centre variance ∝ (axis+1)^-decay"
    )
    p.add_argument("--lowq-fraction", type=float, default=0.0, help="share of faces shrunk towards the mean")
    p.add_argument("--lowq-shrink", type=float, default=0.5, help="their scale factor towards the mean")
    p.add_argument("--threshold", type=float, default=0.6, help="match distance for match recall")
    p.add_argument("--probe-fraction", type=float, help="embedded: share of IVF lists probed per search")
    p.add_argument("--refine", type=int, help="embedded: IVF candidates re-scored exactly per search")
    p.add_argument("--max-lists", type=int, help="embedded: most IVF lists")
    p.add_argument("--exact-below", type=int, help="embedded: exact scan below this many faces")
    p.add_argument("--candidates-min", type=int, help="embedded: candidates re-scored per search (at least)")
    p.add_argument(
        "--faiss-threads", help="embedded: faiss threads per calling thread, a number or 'cores' (default: the store's)"
    )
    p.add_argument(
        "--train-threads", help="embedded: faiss threads for IVF trainings >= 20k faces, a number or 'cores'"
    )
    p.add_argument("--os-m", type=int, help="opensearch: HNSW m")
    p.add_argument("--os-ef-construction", type=int, help="opensearch: HNSW ef_construction")
    p.add_argument("--os-ef-search", type=int, help="opensearch: ef_search (lucene: method_parameters)")
    p.add_argument("--os-candidates-min", type=int, help="opensearch: candidates re-scored per search (at least)")
    p.add_argument("--os-chunk", type=int, default=2000, help="opensearch: faces per bulk request in bulk_load")
    p.add_argument("--os-max-segments", type=int, default=1, help="opensearch: force merge after the bulk load")
    p.add_argument("--os-store-batch", type=int, default=1000, help="opensearch: faces per add_faces in the sample")
    p.add_argument(
        "--os-load-budget", type=float, default=0.0, help="opensearch: stop loading after this many s (0: all)"
    )
    p.add_argument("--os-merge-timeout", type=float, default=1800.0, help="opensearch: force merge budget, s")
    p.add_argument(
        "--os-store-sample", type=int, default=20_000, help="opensearch: faces timed through add_faces (0: skip)"
    )
    p.add_argument(
        "--sweep-ef",
        default="",
        help="opensearch: also measure these search beams (ef_search), e.g. 64,128,256",
    )
    p.add_argument(
        "--sweep-probe", default="", help="embedded: also measure these IVF probe fractions, e.g. 0.125,0.25,0.5"
    )
    p.add_argument(
        "--warmup", type=int, default=200, help="searches before measuring (the first runs used 20: cold after merge)"
    )
    p.add_argument("--sweep-queries", type=int, default=500, help="synthetic queries per swept value")
    p.add_argument("--single-adds", type=int, default=20, help="one-face add_faces calls timed after the searches")
    p.add_argument(
        "--deletes", default="1,10,100", help="delete_faces calls timed at the end, faces per call ('' skips)"
    )
    p.add_argument("--max-search-seconds", type=float, default=60.0, help="search time budget per backend")
    p.add_argument("--timeout", type=float, default=3600.0, help="kill a backend's child after this many s")
    p.add_argument("--workdir", type=Path, help="where data and stores go (default: a temporary directory)")
    p.add_argument("--out", type=Path, help="JSON path (default bench/results/vector-stores-<n>-<time>.json)")
    p.add_argument("--note", default="", help="free text for the report (e.g. what else was running)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--opensearch-pid", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def prepare(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Write data, queries, ids, query groups and the exact truth to ``workdir``; returns data facts."""
    t = time.perf_counter()
    data, queries = generate(args)
    groups = {"synthetic": [0, len(queries)]}
    facts: dict[str, Any] = {"synthetic_faces": len(data)}
    if args.real_faces is not None:
        _names, real = real_descriptors(args.real_faces)
        # Translate the synthetic gallery to the real descriptors' mean (distances are unchanged), so the
        # real faces sit among synthetic ones instead of on an island far from them.
        shift = real.mean(axis=0)
        data += shift
        queries += shift
        rng = np.random.default_rng(args.seed + 3)
        rows = np.sort(rng.choice(len(data) + len(real), size=len(real), replace=False))
        keep = np.ones(len(data) + len(real), bool)
        keep[rows] = False
        merged = np.empty((len(data) + len(real), DIM), np.float32)
        merged[keep], merged[rows] = data, real
        data = merged
        groups["real"] = [len(queries), len(queries) + len(real)]
        queries = np.concatenate([queries, real])
        facts |= {"real_faces": len(real), "real_folder": str(args.real_faces), "real_rows": rows.tolist()}
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    truth_idx, truth_dist = exact_top_k(data, queries, args.k)
    truth_s = time.perf_counter() - t
    same = np.linalg.norm(data[:2000:2] - data[1:2000:2], axis=1)
    facts |= {
        "faces": len(data),
        "shape": args.shape,
        "generate_s": round(gen_s, 2),
        "truth_s": round(truth_s, 2),
        "effective_dims": round(effective_dims(data[:20000]), 1),
        "median_random_pair_distance": round(float(np.median(same)), 3),
        "median_nn_distance_synthetic_queries": round(float(np.median(truth_dist[: groups["synthetic"][1], 0])), 3),
    }
    if "real" in groups:
        r0, r1 = groups["real"]
        # nearest *other* face (the first hit is the face itself)
        facts["median_2nd_nn_distance_real_queries"] = round(float(np.median(truth_dist[r0:r1, 1])), 3)
    print(f"data: { {k: v for k, v in facts.items() if k != 'real_rows'} }", file=sys.stderr)
    for name, arr in [("data", data), ("queries", queries), ("truth_idx", truth_idx), ("truth_dist", truth_dist)]:
        np.save(workdir / f"{name}.npy", arr)
    (workdir / "groups.json").write_text(json.dumps(groups))
    (workdir / "ids.txt").write_text("\n".join(face_ids(len(data), args.seed)) + "\n")
    facts["queries"] = {k: v[1] - v[0] for k, v in groups.items()}
    return facts


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
    server = None
    server_info: dict[str, Any] = {}
    results = []
    try:
        facts = prepare(args, workdir)
        for name in backends:
            extra: list[str] = []
            if name == "opensearch" and args.opensearch_url == "local":
                from facesearch.devtools import opensearch_local

                print(f"starting a local OpenSearch (heap {args.opensearch_heap}) ...", file=sys.stderr)
                server = opensearch_local.start(heap_min=args.opensearch_heap, heap_max=args.opensearch_heap)
                server_info = {
                    "version": opensearch_local.OPENSEARCH_VERSION,
                    "knn": opensearch_local.KNN_VERSION,
                    "heap": args.opensearch_heap,
                    "java_home": str(opensearch_local.find_java_home()),
                    "startup_s": round(server.startup_seconds or 0, 1),
                }
                extra = ["--opensearch-url", server.url, "--opensearch-pid", str(server.pid)]
            print(f"running {name} ...", file=sys.stderr)
            cmd = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])]
            cmd += ["--worker", name, "--workdir", str(workdir), *extra]
            env = dict(os.environ)
            if name == "numpy":  # one core per search, like the other backends (and no BLAS thread wake-ups)
                env |= {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
            except subprocess.TimeoutExpired:
                results.append({"backend": name, "error": f"timed out after {args.timeout}s"})
                continue
            finally:
                if server is not None:
                    server.stop()
                    server = None
            if proc.returncode != 0:
                results.append({"backend": name, "error": proc.stderr.strip().splitlines()[-1:]})
                print(proc.stderr, file=sys.stderr)
                continue
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"  {results[-1]}", file=sys.stderr)
    finally:
        if server is not None:
            server.stop()
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    report = {
        "benchmark": "vector_stores",
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "command": [sys.executable, *sys.argv],
        "parameters": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("worker", "opensearch_pid")
        },
        "data": facts,
        "machine": machine(),
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "note": args.note,
        "opensearch_server": server_info,
        "git": git_state(),
        "results": results,
    }
    try:
        import faiss

        report["versions"] = {"numpy": np.__version__, "faiss": faiss.__version__}
    except ImportError:
        report["versions"] = {"numpy": np.__version__}
    out = args.out or REPO / "bench" / "results" / f"vector-stores-{args.n}-{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"## Vector stores: {facts['faces']} faces, k={args.k}, queries {facts['queries']}\n")
    print(markdown(results, args))
    print(f"\nload average start {load_start}, end {os.getloadavg()}; JSON: {out}")


if __name__ == "__main__":
    main()
