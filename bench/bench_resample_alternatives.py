"""Could Pillow or numpy replace OpenCV in the detector? Descriptors and time, side by side in one run.

Why: opencv-python-headless is 160 MB installed, more than half of Lambda's 250 MB budget, and the engine uses it
for resampling only. Its dominant use (~15 % of engine time on faces-dev) is ``cv2.resize(..., INTER_AREA)`` at
fractional scales: the image pyramid's levels, the downscale of photos over 1600 px, and the 2x mips of odd-sized
images. This script swaps just that call, leaving everything else as it is, and measures what changes:

- ``cv2``: OpenCV, the baseline.
- ``pillow-box`` / ``pillow-bilinear``: ``PIL.Image.resize`` with BOX / BILINEAR (antialiased) filters; exact 2x
  halvings of even sizes as numpy ``(a + b + c + d + 2) >> 2`` (what OpenCV computes there), odd sizes cropped.
- ``numpy-exact``: the engine's numpy port of OpenCV's INTER_AREA (``facesearch.engine.imageops``: its weight
  table and float32 accumulation order), bit-identical to it, for every resize.

One engine; the variants take turns image by image (rotating order), so machine load hits all alike. Per variant:
engine time over faces-dev and its ratio to ``cv2``, faces found, faces lost/extra against ``cv2``, and the largest
and median absolute descriptor difference over matched faces (same image, nearest box).

Usage (from the repository root; models built)::

    .venv/bin/python bench/bench_resample_alternatives.py [--threads 1] [--every 1]

Prints a markdown table; writes JSON to ``bench/results/resample-alternatives-<UTC date and time>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import types
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

import facesearch.engine.detect as detect_module
from facesearch.engine import imageops
from facesearch.engine.engine import FaceEngine

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = REPO.parent / "shared" / "datasets" / "faces-dev" / "images"
VARIANTS = ("cv2", "pillow-box", "pillow-bilinear", "numpy-exact")


def half_even(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    s = img[:h:2, :w:2].astype(np.uint16) + img[1:h:2, :w:2] + img[:h:2, 1:w:2] + img[1:h:2, 1:w:2]
    return ((s + 2) >> 2).astype(np.uint8)


class Resizer:
    """Stands in for ``cv2.resize`` inside the detector; ``variant`` picks the implementation."""

    def __init__(self) -> None:
        self.variant = "cv2"

    def __call__(self, src: np.ndarray, w: int, h: int) -> np.ndarray:
        if self.variant == "cv2":
            return cv2.resize(src, (w, h), interpolation=cv2.INTER_AREA)
        if self.variant == "numpy-exact":
            return imageops._area_numpy(src, w, h)  # the engine's own port
        if src.shape[1] // 2 == w and src.shape[0] // 2 == h:
            return half_even(src)
        f = Image.Resampling.BOX if self.variant == "pillow-box" else Image.Resampling.BILINEAR
        return np.asarray(Image.fromarray(src).resize((w, h), f))


def match(base: list[tuple[np.ndarray, np.ndarray | None]], other: list[tuple[np.ndarray, np.ndarray | None]]):
    """(descriptor differences, lost, extra): each base face paired with the nearest unused face of ``other``."""
    rest = list(other)
    diffs, lost = [], 0
    for box, desc in base:
        if not rest:
            lost += 1
            continue
        j = int(np.argmin([np.abs(b - box).max() for b, _ in rest]))
        if np.abs(rest[j][0] - box).max() > 0.25 * (box[2] - box[0]):
            lost += 1
            continue
        _, d2 = rest.pop(j)
        if desc is not None and d2 is not None:
            diffs.append(float(np.abs(desc - d2).max()))
    return diffs, lost, len(rest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    ap.add_argument("--threads", type=int, default=None, help="engine threads (default: as the engine)")
    ap.add_argument("--every", type=int, default=1, help="use every n-th image")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    resizer = Resizer()
    imageops.use_opencv(True)
    shim = types.SimpleNamespace(**{k: getattr(imageops, k) for k in dir(imageops) if not k.startswith("__")})
    shim.area_resize = resizer
    detect_module.imageops = shim  # only the detector's resizes change; alignment keeps OpenCV
    engine = FaceEngine(threads=args.threads)
    paths = sorted(p for p in args.images.iterdir() if p.is_file())[:: args.every]
    datas = [p.read_bytes() for p in paths]
    for v in VARIANTS:  # warm-up: first calls and area tables
        resizer.variant = v
        engine.analyze(datas[0])
    load_start = os.getloadavg()
    seconds = dict.fromkeys(VARIANTS, 0.0)
    faces: dict[str, list] = {v: [] for v in VARIANTS}
    for i, data in enumerate(datas):
        for k in range(len(VARIANTS)):
            v = VARIANTS[(i + k) % len(VARIANTS)]
            resizer.variant = v
            t = time.perf_counter()
            result = engine.analyze(data)
            seconds[v] += time.perf_counter() - t
            faces[v].append([(np.array(f.box), f.descriptor) for f in result.faces])
        print(f"{i + 1}/{len(datas)} {paths[i].name}", file=sys.stderr)
    rows = {}
    for v in VARIANTS:
        diffs, lost, extra = [], 0, 0
        for base, other in zip(faces["cv2"], faces[v], strict=True):
            d, lo, ex = match(base, other)
            diffs += d
            lost += lo
            extra += ex
        rows[v] = {
            "seconds": seconds[v],
            "ratio_to_cv2": seconds[v] / seconds["cv2"],
            "faces": sum(len(f) for f in faces[v]),
            "lost": lost,
            "extra": extra,
            "max_abs_descriptor_diff": max(diffs, default=0.0),
            "median_abs_descriptor_diff": float(np.median(diffs)) if diffs else 0.0,
            "faces_over_1e-4": int(sum(d > 1e-4 for d in diffs)),
        }
    report = {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "images": len(paths),
        "threads": args.threads or "default",
        "opencv": cv2.__version__,
        "pillow": Image.__version__,
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "variants": rows,
    }
    out = (
        args.out or REPO / "bench" / "results" / f"resample-alternatives-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(
        f"| resize in the detector ({len(paths)} faces-dev images) | engine s | vs cv2 | faces | lost | extra "
        "| max abs desc diff | median | faces > 1e-4 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for v, r in rows.items():
        print(
            f"| {v} | {r['seconds']:.1f} | {r['ratio_to_cv2']:.2f} | {r['faces']} | {r['lost']} | {r['extra']} "
            f"| {r['max_abs_descriptor_diff']:.2g} | {r['median_abs_descriptor_diff']:.2g} | {r['faces_over_1e-4']} |"
        )
    print(f"\nload {load_start[0]:.1f} -> {report['loadavg_end'][0]:.1f}; JSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
