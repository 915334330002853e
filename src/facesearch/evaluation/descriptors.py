"""Every face of every image of a labelled folder, described once and cached per (dataset, model version).

Describing LFW's 11k photos takes minutes; every metric after that is matrix arithmetic on the descriptors.
So the faces found (box, confidence, descriptor) are stored in one ``.npz`` under
``~/.cache/facesearch/eval/`` (outside the repository), keyed by the dataset's path and file list and by
the engine's model version and pinned model hashes: a re-run with the same engine does no image work, and a
new model can never be scored with stale descriptors.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facesearch.errors import FaceSearchError

CACHE_FORMAT = 1


@dataclass(frozen=True)
class DescribedSet:
    """All faces of ``images``: face k belongs to image ``face_image[k]``; faces of one image are contiguous."""

    images: list[str]
    widths: np.ndarray  # (I,) int32
    heights: np.ndarray  # (I,) int32
    face_image: np.ndarray  # (F,) int32 index into images
    boxes: np.ndarray  # (F, 4) float32 x1, y1, x2, y2 in pixels
    confidence: np.ndarray  # (F,) float32
    descriptors: np.ndarray  # (F, 128) float32
    errors: dict[str, str]
    ms_per_image: np.ndarray  # (I,) float32, time to analyze each image when it was described
    from_cache: bool = False

    def faces_of(self, i: int) -> np.ndarray:
        """Indices of the faces found in image ``i`` (largest first, as the engine returns them)."""
        lo, hi = np.searchsorted(self.face_image, [i, i + 1])
        return np.arange(lo, hi)


def cache_root() -> Path:
    """``FACESEARCH_EVAL_CACHE``, else ``eval/`` under the models' cache root (``FACESEARCH_CACHE``)."""
    if os.environ.get("FACESEARCH_EVAL_CACHE"):
        return Path(os.environ["FACESEARCH_EVAL_CACHE"])
    base = os.environ.get("FACESEARCH_CACHE", str(Path.home() / ".cache" / "facesearch"))
    return Path(base) / "eval"


def model_fingerprint(engine: object) -> str:
    """The engine's model version, the pinned model hashes and the detector settings that change the faces."""
    from facesearch.engine.types import FACE_MODEL_VERSION
    from facesearch.models.registry import ARTIFACTS

    parts = {
        "version": FACE_MODEL_VERSION,
        "artifacts": ARTIFACTS,
        "min_face_size": getattr(engine, "min_face_size", None),
        "min_face_fraction": getattr(engine, "min_face_fraction", None),
        "format": CACHE_FORMAT,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def cache_file(root: Path, images: Sequence[str], fingerprint: str) -> Path:
    """One file per (dataset folder + its image list + sizes, model fingerprint)."""
    root = Path(root).resolve()
    h = hashlib.sha256(str(root).encode())
    for name in images:
        h.update(name.encode())
        h.update(str((root / "images" / name).stat().st_size).encode())
    return cache_root() / f"{root.name}-{h.hexdigest()[:12]}" / f"{fingerprint}.npz"


def describe(
    root: Path,
    images: Sequence[str],
    engine_factory: Callable[[], object],
    *,
    use_cache: bool = True,
    progress: bool = True,
    fingerprint: str | None = None,
) -> DescribedSet:
    """Faces of every image, from the cache when this engine has described this folder before.

    ``engine_factory`` is called only on a cache miss, so a warm run does not even load the models.
    ``fingerprint`` identifies the engine's configuration (``model_fingerprint``); default: a default engine.
    """
    root = Path(root)
    fingerprint = fingerprint or _fingerprint_without_engine()
    path = cache_file(root, images, fingerprint)
    if use_cache and path.is_file():
        loaded = _load(path, images)
        if loaded is not None:
            return loaded
    engine = engine_factory()
    described = _describe_all(root, images, engine, progress=progress)
    if use_cache:
        _save(path, described)
    return described


def _fingerprint_without_engine() -> str:
    """The fingerprint of a default engine, computed without loading any model."""
    from facesearch.engine.engine import MIN_FACE_FRACTION

    class _Defaults:
        min_face_size = 20
        min_face_fraction = MIN_FACE_FRACTION

    return model_fingerprint(_Defaults())


def _describe_all(root: Path, images: Sequence[str], engine: object, *, progress: bool) -> DescribedSet:
    widths = np.zeros(len(images), np.int32)
    heights = np.zeros(len(images), np.int32)
    ms = np.zeros(len(images), np.float32)
    face_image: list[int] = []
    boxes: list[tuple[float, float, float, float]] = []
    conf: list[float] = []
    desc: list[np.ndarray] = []
    errors: dict[str, str] = {}
    bar = _progress_bar(len(images), enabled=progress)
    for i, name in enumerate(images):
        start = time.perf_counter()
        try:
            analyzed = engine.analyze((root / "images" / name).read_bytes())  # type: ignore[attr-defined]
        except FaceSearchError as exc:
            errors[name] = f"{exc.code}: {exc.message}"
        else:
            widths[i], heights[i] = analyzed.width, analyzed.height
            for face in analyzed.faces:
                if face.descriptor is None:
                    continue
                face_image.append(i)
                x1, y1, x2, y2 = face.box
                boxes.append((float(x1), float(y1), float(x2), float(y2)))
                conf.append(float(face.confidence))
                desc.append(np.asarray(face.descriptor, np.float32))
        ms[i] = (time.perf_counter() - start) * 1000
        bar.update(1)
    bar.close()
    return DescribedSet(
        images=list(images),
        widths=widths,
        heights=heights,
        face_image=np.asarray(face_image, np.int32),
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        confidence=np.asarray(conf, np.float32),
        descriptors=np.stack(desc).astype(np.float32) if desc else np.zeros((0, 128), np.float32),
        errors=errors,
        ms_per_image=ms,
    )


def _progress_bar(total: int, *, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="describing faces", file=sys.stderr, disable=not enabled)


def _save(path: Path, d: DescribedSet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(
        tmp,
        images=np.asarray(d.images),
        widths=d.widths,
        heights=d.heights,
        face_image=d.face_image,
        boxes=d.boxes,
        confidence=d.confidence,
        descriptors=d.descriptors,
        ms_per_image=d.ms_per_image,
        errors=np.asarray(json.dumps(d.errors)),
    )
    os.replace(tmp, path)  # a crash mid-write leaves the old cache (or none), never a torn file


def _load(path: Path, images: Sequence[str]) -> DescribedSet | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if list(z["images"]) != list(images):
                return None
            return DescribedSet(
                images=list(images),
                widths=z["widths"],
                heights=z["heights"],
                face_image=z["face_image"],
                boxes=z["boxes"],
                confidence=z["confidence"],
                descriptors=z["descriptors"],
                errors=json.loads(str(z["errors"])),
                ms_per_image=z["ms_per_image"],
                from_cache=True,
            )
    except (OSError, ValueError, KeyError):
        return None  # unreadable cache: describe again
