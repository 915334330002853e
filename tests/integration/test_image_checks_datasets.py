"""The header checks that refuse decompression bombs and lying JPEG headers (collections/images.py:
check_image) refuse no real photo: every image of the shared datasets passes, as do re-encodings of them in
the modes and codings that stress the checks (progressive, optimised Huffman tables, RGBA and 16-bit PNG)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesearch.collections.images import check_image

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
IMAGES = sorted(
    p
    for folder in ("faces-dev/images", "lfw/images", "crowd")
    for p in (DATASETS / folder).rglob("*")
    if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"}
)


def test_every_dataset_image_passes_the_header_checks():
    if len(IMAGES) < 60:
        pytest.fail(f"shared datasets missing under {DATASETS}")
    refused = []
    for path in IMAGES:
        try:
            check_image(path.read_bytes())
        except Exception as exc:
            refused.append(f"{path.name}: {exc}")
    assert refused == []


@pytest.mark.parametrize("path", IMAGES[:: max(1, len(IMAGES) // 12)], ids=lambda p: p.name)
def test_re_encodings_pass(path: Path):
    image = Image.open(path).convert("RGB")
    variants = {
        "progressive": ("JPEG", {"progressive": True, "optimize": True, "quality": 30}),
        "optimized q5": ("JPEG", {"optimize": True, "quality": 5}),
        "gray": ("JPEG", {"quality": 50}),
        "rgba png": ("PNG", {}),
    }
    for name, (fmt, options) in variants.items():
        img = image.convert("L") if name == "gray" else image.convert("RGBA") if fmt == "PNG" else image
        buf = io.BytesIO()
        img.save(buf, fmt, **options)
        check_image(buf.getvalue())
    sixteen = io.BytesIO()
    Image.fromarray(np.asarray(image.convert("L"), dtype=np.uint16) * 257).save(sixteen, "PNG")
    check_image(sixteen.getvalue())
