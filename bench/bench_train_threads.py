"""Insert rate of the embedded store with faiss' thread settings for per-call work and for IVF training.

100,000 clustered faces (identity centres over few directions, as real descriptors) through ``add_faces`` in
batches of 5,000, into a fresh store per configuration; the configurations alternate (the order reversed
every repetition) so that background load drifts hit them alike; then 20 one-face ``add_faces`` calls.
Configurations: (faiss_threads, train_threads) = (1, 1), (1, every core), (every core, every core) — the
last is faiss' own default for everything, as the store ran before 2026-12-01.

Usage (repository root)::

    .venv/bin/python bench/bench_train_threads.py            # about a minute on a quiet 2-core machine
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime

import numpy as np

from facesearch.store.embedded import EmbeddedStore
from facesearch.store.records import CollectionRecord, FaceRecord

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CONFIGS: list[tuple[int | None, int | None]] = [(1, 1), (1, None), (None, None)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--reps", type=int, default=2)
    args = p.parse_args()
    rng = np.random.default_rng(1)
    spread = (np.arange(128) + 1.0) ** -1.0
    spread *= 0.9 / np.sqrt(2 * spread.sum())
    people = max(args.n // 3, 1)
    centres = rng.normal(0, 1, (people, 128)) * np.sqrt(spread)
    data = (centres[rng.integers(0, people, args.n)] + rng.normal(0, 0.4 / 16, (args.n, 128))).astype(np.float32)
    box = {"Width": 1.0, "Height": 1.0, "Left": 0.0, "Top": 0.0}
    records = [FaceRecord(f"f{i:07d}", "img", v, box, 99.0, T0) for i, v in enumerate(data)]
    print(f"load average at start {os.getloadavg()}")
    for rep in range(args.reps):
        for faiss_threads, train_threads in CONFIGS if rep % 2 == 0 else CONFIGS[::-1]:
            with (
                tempfile.TemporaryDirectory() as d,
                EmbeddedStore(d, faiss_threads=faiss_threads, train_threads=train_threads) as store,
            ):
                store.create_collection(CollectionRecord("c", T0, "bench"))
                began = time.perf_counter()
                for s in range(0, args.n, 5000):
                    store.add_faces("c", records[s : s + 5000])
                rate = args.n / (time.perf_counter() - began)
                one = []
                for i in range(20):
                    t = time.perf_counter()
                    store.add_faces("c", [FaceRecord(f"x{i}", "img", data[i], box, 99.0, T0)])
                    one.append((time.perf_counter() - t) * 1000)
            names = ["every core" if x is None else str(x) for x in (faiss_threads, train_threads)]
            print(
                f"faiss_threads {names[0]}, train_threads {names[1]}: {rate:,.0f} faces/s, one-face add_faces "
                f"p50 {np.median(one):.2f} ms (load {os.getloadavg()[0]:.1f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
