"""One collection's vectors for the embedded store: exact float32 vectors plus an IVF-PQ candidate index.

Two faiss indexes keyed by ``faces.seq``:

* ``vectors``: ``IndexIDMap2(IndexFlatL2)`` — every descriptor in float32, bit-for-bit what SQLite holds.
  Small collections are scanned exactly here, and it gives the vectors to re-score candidates with
  (``reconstruct_batch``: ~0.07 ms for 300 keys at 1M faces, no SQLite read);
* ``ivf``: ``IVF<nlist>,PQ64x4fs`` (inverted lists of 4-bit product codes scanned with SIMD "fast scan"),
  trained on the collection's own vectors once it has ``train_at`` faces and retrained while a collection
  grows (``nlist`` = a power of two near n/64, at most ``max_lists``). A search probes ``probe_fraction``
  of the lists and re-scores the best ``refine`` candidates exactly.

Why this and not a graph (HNSW, which the store used before): descriptors of different people are spread
out, so the 4th–10th neighbours of a query are "random nearby strangers" that a graph reaches only after many
hops, each a cache miss once the graph outgrows the caches. At 1M faces the usearch graph (760 MB) needed
p95 4.8 ms for recall@10 0.977 and inserted 1.5k faces/s on the 2-core machine; through the same store this
layout, probing 3/16 of 1024 lists, gives recall 0.994 at p95 1.25–1.93 ms and 15–16k faces/s (BENCHMARKS.md,
"Vector stores"). IVF also has no unreachable entries: every face is in exactly one list, so HNSW's
orphaned-node failure around near-average faces cannot happen.
"""

from __future__ import annotations

import json
import math
import os
import struct
from typing import Any

import faiss
import numpy as np

from facesearch.store.records import DIMENSION

_MAGIC = b"FSVIDX1\n"
_PQ = "PQ64x4fs"  # 64 sub-quantizers of 2 dimensions, 16 centroids each: 32 bytes per face
_MIN_TRAIN = 16  # fewer faces than this are always scanned exactly (PQ needs 16 points to train)
_POINTS_PER_LIST = 64
_TRAIN_SAMPLE_PER_LIST = 128
_MIN_SCAN = 2048
# Fast-scan kernel for one query at a time, on one thread: 12 % faster than faiss' automatic choice at 1M
# faces (p50 0.63 vs 0.74 ms probing 192 of 1024 lists). 14 (probes in parallel) is faster still for a lone
# query (0.49 ms) but spends both cores on it, which concurrent searches then fight over.
_FAST_SCAN_IMPLEM = 10
# (Re)trainings of at least this many faces run on ``train_threads``: k-means over tens of thousands of
# vectors is where faiss' threads pay off (100k faces loaded at 18.8–21.7k faces/s with training on both
# cores vs 14.0–14.5k on one, quiet 2-core machine, BENCHMARKS.md); smaller ones (tests, a lowered
# ``exact_below``) stay on the calling thread's setting, where starting a team costs more than it saves.
PARALLEL_TRAIN_MIN = 20_000


def cpu_count() -> int:
    """Cores this process may run on (the CPU affinity mask, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def use_threads(threads: int | None) -> None:
    """Run the calling thread's faiss calls on ``threads`` OpenMP threads (None: every core of the affinity mask).

    OpenMP keeps this setting per thread — ``omp_set_num_threads`` in one thread does not change another's,
    and a new thread starts at the process default (all cores) — so the store calls this in the thread that
    is about to call faiss, every time: it costs well under a microsecond. faiss' OpenBLAS is the OpenMP build,
    so its matrix products (k-means when the IVF is trained) follow the same setting.
    """
    faiss.omp_set_num_threads(cpu_count() if threads is None else max(1, int(threads)))


def lists_for(n: int, max_lists: int) -> int:
    """Inverted lists for ``n`` faces: the largest power of two ≤ n/64, between 1 and ``max_lists``."""
    if n < 2 * _POINTS_PER_LIST:
        return 1
    return min(max_lists, 2 ** int(math.log2(n / _POINTS_PER_LIST)))


class CollectionVectorIndex:
    """The vectors of one collection and the IVF index over them. Searches may run concurrently; changes need
    exclusive access (the store's readers/writer lock)."""

    def __init__(
        self, *, train_at: int = 20_000, max_lists: int = 1024, seed: int = 1234, train_threads: int | None = None
    ) -> None:
        self.train_at = max(train_at, _MIN_TRAIN)
        self.train_threads = train_threads  # faiss threads for large (re)trainings; None: the caller's setting
        self.max_lists = max_lists
        self.seed = seed
        self.vectors: Any = faiss.IndexIDMap2(faiss.IndexFlatL2(DIMENSION))
        self.ivf: Any = None  # faiss.IndexIVFPQFastScan once trained
        self.trained_size = 0  # faces the IVF was (re)trained at

    def __len__(self) -> int:
        return int(self.vectors.ntotal)

    @property
    def nlist(self) -> int:
        return 0 if self.ivf is None else int(self.ivf.nlist)

    # -- changes -----------------------------------------------------------------------------------
    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(keys, dtype=np.int64)
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        self.vectors.add_with_ids(x, ids)
        if self.ivf is not None and lists_for(len(self), self.max_lists) < 2 * self.nlist:
            self.ivf.add_with_ids(x, ids)
        elif len(self) >= self.train_at:
            self._train()  # first training, or the collection outgrew its lists: rebuild from ``vectors``

    def remove(self, keys: np.ndarray) -> int:
        selector = faiss.IDSelectorBatch(np.asarray(keys, dtype=np.int64))
        removed = int(self.vectors.remove_ids(selector))
        if self.ivf is not None:
            self.ivf.remove_ids(selector)
        return removed

    def _train(self) -> None:
        """(Re)train on ``train_threads`` when the training is large enough for a team of threads to pay off."""
        if self.train_threads is None or len(self) < PARALLEL_TRAIN_MIN:
            return self._train_now()
        previous = faiss.omp_get_max_threads()
        use_threads(self.train_threads)
        try:
            return self._train_now()
        finally:
            faiss.omp_set_num_threads(previous)

    def _train_now(self) -> None:
        n = len(self)
        nlist = lists_for(n, self.max_lists)
        ids = faiss.vector_to_array(self.vectors.id_map)
        all_vectors = self.vectors.index.reconstruct_n(0, n)
        ivf: Any = faiss.index_factory(DIMENSION, f"IVF{nlist},{_PQ}", faiss.METRIC_L2)  # IndexIVFPQFastScan
        ivf.cp.seed = self.seed
        ivf.cp.min_points_per_centroid = 1  # small collections: fewer points per list is fine, and quiet
        ivf.pq.cp.min_points_per_centroid = 1
        sample_size = min(n, nlist * _TRAIN_SAMPLE_PER_LIST)
        rng = np.random.default_rng(self.seed)
        sample = all_vectors if sample_size == n else all_vectors[np.sort(rng.choice(n, sample_size, replace=False))]
        ivf.train(sample)
        ivf.add_with_ids(all_vectors, ids)
        ivf.implem = _FAST_SCAN_IMPLEM
        self.ivf, self.trained_size = ivf, n

    # -- reads -------------------------------------------------------------------------------------
    def get(self, keys: np.ndarray) -> np.ndarray:
        """Float32 vectors of ``keys`` (all must be present)."""
        return self.vectors.reconstruct_batch(np.asarray(keys, dtype=np.int64))

    def scan(self, query: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact nearest ``count``: keys and float32 squared distances, ascending."""
        distances, labels = self.vectors.search(query.reshape(1, DIMENSION), min(count, max(len(self), 1)))
        found = labels[0] >= 0
        return labels[0][found].astype(np.uint64), distances[0][found]

    def candidates(self, query: np.ndarray, count: int, probe_fraction: float) -> np.ndarray | None:
        """Keys of the approximate nearest ``count`` (unordered), or None without a trained IVF. Probes
        ``probe_fraction`` of the lists, and at least enough lists to hold ~``_MIN_SCAN`` faces: scanning
        that few codes costs microseconds, and a small collection is then searched (almost) completely."""
        if self.ivf is None:
            return None
        share = max(probe_fraction, _MIN_SCAN / max(len(self), 1))
        params = faiss.SearchParametersIVF()
        params.nprobe = min(self.nlist, max(1, math.ceil(self.nlist * share)))
        _, labels = self.ivf.search(query.reshape(1, DIMENSION), count, params=params)
        return labels[0][labels[0] >= 0].astype(np.uint64)

    def memory_usage(self) -> int:
        """Approximate bytes held: float32 vectors + ids (+ hash map) + IVF codes, ids and centroids."""
        n = len(self)
        total = n * (4 * DIMENSION + 8 + 32)
        if self.ivf is not None:
            total += n * (self.ivf.code_size + 8) + self.nlist * 4 * DIMENSION
        return total

    # -- persistence -------------------------------------------------------------------------------
    def to_bytes(self) -> list[bytes | memoryview]:
        """The serialised index as chunks to write in order (no copy of the big arrays)."""
        vec = faiss.serialize_index(self.vectors)
        ivf = faiss.serialize_index(self.ivf) if self.ivf is not None else np.empty(0, np.uint8)
        header = json.dumps(
            {"dimension": DIMENSION, "vectors": int(vec.nbytes), "ivf": int(ivf.nbytes), "trained": self.trained_size}
        ).encode()
        return [_MAGIC, struct.pack("<Q", len(header)), header, vec.data, ivf.data]

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, **options: Any) -> CollectionVectorIndex:
        view = memoryview(data)
        if bytes(view[: len(_MAGIC)]) != _MAGIC:
            raise ValueError("not a facesearch vector index file")
        start = len(_MAGIC) + 8
        (header_len,) = struct.unpack("<Q", view[len(_MAGIC) : start])
        header = json.loads(bytes(view[start : start + header_len]))
        if header.get("dimension") != DIMENSION:
            raise ValueError(f"index dimension {header.get('dimension')} != {DIMENSION}")
        start += header_len
        vec_end = start + int(header["vectors"])
        if vec_end + int(header["ivf"]) != len(view):
            raise ValueError("index file is truncated or has trailing bytes")
        index = cls(**options)
        index.vectors = faiss.deserialize_index(np.frombuffer(view[start:vec_end], dtype=np.uint8))
        if index.vectors.d != DIMENSION or index.vectors.metric_type != faiss.METRIC_L2:
            raise ValueError("unexpected vector index type")
        if header["ivf"]:
            index.ivf = faiss.deserialize_index(np.frombuffer(view[vec_end:], dtype=np.uint8))
            index.ivf.implem = _FAST_SCAN_IMPLEM  # not serialised
            if index.ivf.ntotal != index.vectors.ntotal or index.ivf.d != DIMENSION:
                raise ValueError("IVF and vector index disagree")
            index.trained_size = int(header["trained"])
        return index
