"""Where a descriptor's bytes are on disk: the literal check behind "deleted faces leave the disk"."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def files_holding(root: Path, vector: np.ndarray) -> list[str]:
    """Files under ``root`` (relative paths) that contain the descriptor's little-endian float32 bytes."""
    needle = np.asarray(vector).astype("<f4").tobytes()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes())
