"""What sealing costs: a plain JSONL audit write (the baseline, what main had) against the sealed chain
(ChainedAuditSink over the same JSONL sink: flock, tail read, HMAC, fsync; a checkpoint every 10 records),
side by side in one run, alternating write by write so background load hits both alike. Also times
``audit verify`` over the sealed log.

Usage (from the repository root): ``.venv/bin/python bench/bench_audit.py [--records 2000]``. Prints a markdown
table; the records are SearchFacesByImage-shaped (10 matches each), written to a temporary directory on the
same filesystem as the repository.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from facesearch.audit import AuditRecord, ChainedAuditSink, JsonlAuditSink, JsonlCheckpointStore
from facesearch.audit.verify import verify

KEY = b"bench-key"


def record(n: int) -> AuditRecord:
    matches = [
        {"FaceId": f"00000000-0000-0000-0000-{i:012d}", "Similarity": 99.1, "ExternalImageId": f"p{i}", "UserId": None}
        for i in range(10)
    ]
    return AuditRecord(
        operation="SearchFacesByImage",
        caller="bench@host",
        collection_id="c",
        query_image_sha256=f"{n:064x}",
        threshold=80.0,
        results=matches,
        details={"source": "bytes", "faces_searched": 1},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        plain = JsonlAuditSink(Path(tmp) / "plain.jsonl")
        log = JsonlAuditSink(Path(tmp) / "sealed.jsonl")
        sealed = ChainedAuditSink(
            log, KEY, checkpoints=JsonlCheckpointStore(Path(tmp) / "cp.jsonl", KEY), checkpoint_every=10
        )
        times: dict[str, list[float]] = {"plain JSONL (baseline)": [], "sealed chain": []}
        load = os.getloadavg()[0]
        for n in range(args.records):
            for name, sink in (("plain JSONL (baseline)", plain), ("sealed chain", sealed)):
                start = time.perf_counter()
                sink.write(record(n))
                times[name].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        report = verify(log.scan(), KEY, sealed.checkpoints)
        verify_s = time.perf_counter() - start
        assert report.ok
    base = times["plain JSONL (baseline)"]
    print(f"{args.records} records each, load average at start {load:.2f}, cores {os.cpu_count()}\n")
    print("| sink | p50 ms | p95 ms | ratio p50 to baseline |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        p50, p95 = statistics.median(values), statistics.quantiles(values, n=20)[18]
        print(f"| {name} | {p50:.3f} | {p95:.3f} | {p50 / statistics.median(base):.2f} |")
    print(
        f"\n`audit verify` of {args.records} sealed records: {verify_s:.2f} s ({args.records / verify_s:.0f} records/s)"
    )


if __name__ == "__main__":
    main()
