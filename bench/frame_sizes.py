"""Frame record sizes with our own JPEGs, for the Kinesis shard arithmetic in docs/VIDEO.md.

Encodes the rendered test videos (``facesearch.devtools.video_scenes``) and views of the crowd photo at 640×480 and
1280×720 with the producer's settings (OpenCV JPEG, quality 85 unless ``--quality``) and prints, per resolution,
the record size (header + JPEG) p50/p95/max and the highest frame rate one camera (one partition key, so one shard) can
send, and how many cameras one shard carries at 5, 10 and 15 frames/s:
a shard takes 1 MiB/s and 1,000 records/s of writes, so cameras per shard = min(1 MiB/s ÷ (record bytes × fps),
1000 ÷ fps), computed with the p95 record size.

    .venv/bin/python bench/frame_sizes.py [--quality 85]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("FACESEARCH_DATASETS", REPO.parent / "shared" / "datasets"))
MIB = 1024 * 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quality", type=int, default=85)
    args = ap.parse_args()
    from facesearch.devtools import video_scenes as vs
    from facesearch.engine.engine import FaceEngine
    from facesearch.video.frames import encode_jpeg, header_size

    engine = FaceEngine()
    sprites = vs.load_sprites(DATASETS / "faces-dev", engine)
    scenes = vs.scenes(DATASETS / "crowd" / "largest_selfie.jpg")
    header = header_size("camera-0001")
    sizes: dict[str, list[int]] = {}
    for name, scene in scenes.items():
        for rgb, _ in vs.render(scene, sprites):
            sizes.setdefault(f"{rgb.shape[1]}x{rgb.shape[0]} {name}", []).append(len(encode_jpeg(rgb, args.quality)))
            if scene.crowd is not None:  # the same busy view at 640x480 (a crowd seen by a VGA camera)
                small = cv2.resize(rgb[:, 160:1120], (640, 480), interpolation=cv2.INTER_AREA)
                sizes.setdefault("640x480 crowd_pan", []).append(len(encode_jpeg(small, args.quality)))
    print(f"JPEG quality {args.quality}; record = {header}-byte header (11-char camera id) + JPEG\n")
    print("| frames | n | record p50 KiB | p95 KiB | max KiB | max fps 1 camera | cameras/shard @5 fps | @10 | @15 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, values in sorted(sizes.items()):
        rec = np.array(values) + header
        p95 = float(np.percentile(rec, 95))
        per = [f"{min(MIB / (p95 * fps), 1000 / fps):.1f}" for fps in (5, 10, 15)]
        print(
            f"| {key} | {len(rec)} | {np.median(rec) / 1024:.1f} | {p95 / 1024:.1f} | {rec.max() / 1024:.1f} | "
            f"{min(MIB / p95, 1000):.1f} | " + " | ".join(str(c) for c in per) + " |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
