"""MTCNN detector with several threads: the same faces, bit for bit, as the serial path (threads=1).

The parallel path splits work, never arithmetic: P-net levels and strips of the largest levels run on different
threads, R-/O-net candidates in differently sized batches. These tests compare it with the serial path on real
photos, also with far more strips and batches than the default policy makes, and check the thread discipline.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest

from facesearch.engine import detect as detect_mod
from facesearch.engine.detect import DetectedFace, MtcnnDetector, _PnetLevel

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
IMAGES = DATASETS / "faces-dev" / "images"
CROWD = DATASETS / "crowd" / "largest_selfie.jpg"
# a portrait searched downscaled (1868 px > max_detect_side), a small portrait, a group, odd-sized widths
PHOTOS = ["img1.jpg", "img10.jpg", "selfie-many-people.jpg", "couple.jpg"]


def _rgb(path: Path) -> np.ndarray:
    if not path.is_file():
        pytest.fail(f"shared dataset missing: {path} (expected beside the repository as ../shared/datasets)")
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _same(a: list[DetectedFace], b: list[DetectedFace]) -> None:
    assert len(a) == len(b)
    for fa, fb in zip(a, b, strict=True):
        assert fa.box == fb.box
        assert fa.confidence == fb.confidence
        assert fa.landmarks.dtype == fb.landmarks.dtype and np.array_equal(fa.landmarks, fb.landmarks)


@pytest.fixture(scope="module")
def serial() -> MtcnnDetector:
    return MtcnnDetector(threads=1)


@pytest.fixture(scope="module")
def parallel() -> MtcnnDetector:
    return MtcnnDetector(threads=2)


@pytest.fixture(scope="module")
def crowd() -> np.ndarray:
    return _rgb(CROWD)


@pytest.fixture(scope="module")
def crowd_serial(serial: MtcnnDetector, crowd: np.ndarray) -> list[DetectedFace]:
    return serial.detect(crowd)


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("min_face_size", [20, 48])
def test_parallel_equals_serial_on_photos(
    serial: MtcnnDetector, parallel: MtcnnDetector, name: str, min_face_size: int
) -> None:
    rgb = _rgb(IMAGES / name)
    expected = serial.detect(rgb, min_face_size=min_face_size)
    assert expected
    _same(parallel.detect(rgb, min_face_size=min_face_size), expected)


def test_parallel_equals_serial_on_crowd(
    parallel: MtcnnDetector, crowd: np.ndarray, crowd_serial: list[DetectedFace]
) -> None:
    assert len(crowd_serial) >= 150
    _same(parallel.detect(crowd), crowd_serial)
    _same(MtcnnDetector(threads=3).detect(crowd), crowd_serial)  # uneven splits


def test_many_strips_and_small_batches_change_nothing(
    monkeypatch: pytest.MonkeyPatch, serial: MtcnnDetector, crowd: np.ndarray, crowd_serial: list[DetectedFace]
) -> None:
    """Cut P-net levels into strips of 5 columns and run R-/O-net on batches of ~1-20: still bit-identical."""
    monkeypatch.setattr(detect_mod, "_PNET_STRIP", 5)
    monkeypatch.setattr(detect_mod, "_MIN_SPLIT", {24: 1, 48: 1})
    monkeypatch.setattr(detect_mod, "_BATCH", {24: 19, 48: 7})
    det = MtcnnDetector(threads=2)
    _same(det.detect(crowd), crowd_serial)
    small = _rgb(IMAGES / "selfie-many-people.jpg")
    _same(det.detect(small), serial.detect(small))


@pytest.mark.parametrize(("sw", "sh"), [(12, 12), (13, 40), (101, 77), (960, 539), (961, 540)])
@pytest.mark.parametrize("strip", [1, 2, 7, 48, 10_000])
def test_pnet_strips_reproduce_the_level(serial: MtcnnDetector, sw: int, sh: int, strip: int) -> None:
    """Strips cover every output column once and their maps, side by side, are the whole level's maps."""
    rng = np.random.default_rng(sw * 1000 + sh)
    x = rng.uniform(-1, 1, (1, sw, sh, 3)).astype(np.float32)  # (N, W, H, 3): strips cut axis 1
    whole = serial._pnet.run(None, {"input_1": x})
    level = _PnetLevel(sw, sh, sw, sh, strip)
    assert level.out_w == whole[0].shape[1]
    assert level.strips[0][0] == 0 and level.strips[-1][1] == level.out_w
    assert all(a[1] == b[0] and 0 < a[1] - a[0] <= strip for a, b in pairwise(level.strips))
    parts = []
    for j0, j1 in level.strips:
        x_end = sw if j1 == level.out_w else 2 * j1 + 10
        out = serial._pnet.run(None, {"input_1": np.ascontiguousarray(x[:, 2 * j0 : x_end])})
        assert out[0].shape[1] == j1 - j0
        parts.append(out)
    for k, full in enumerate(whole):
        assert np.array_equal(np.concatenate([p[k] for p in parts], axis=1), full)


def test_run_all_keeps_order_and_dependencies(parallel: MtcnnDetector) -> None:
    """Results come back in list order; a task starts only after the one it is listed ``after``."""
    events: list[tuple[str, int]] = []
    lock = threading.Lock()
    rng = np.random.default_rng(3)
    delays = rng.uniform(0, 0.004, 40)
    after = [None if i < 8 else int(rng.integers(0, i)) for i in range(40)]

    def task(i: int) -> int:
        with lock:
            events.append(("start", i))
        time.sleep(delays[i])
        with lock:
            events.append(("end", i))
        return i * i

    for det in (parallel, MtcnnDetector(threads=1), MtcnnDetector(threads=4)):
        events.clear()
        assert det._run_all([lambda i=i: task(i) for i in range(40)], after) == [i * i for i in range(40)]
        pos = {e: n for n, e in enumerate(events)}
        assert all(a is None or pos[("end", a)] < pos[("start", i)] for i, a in enumerate(after))


def _record_run_threads(monkeypatch: pytest.MonkeyPatch, det: MtcnnDetector) -> set[int]:
    seen: set[int] = set()
    for attr in ("_pnet", "_rnet", "_onet"):
        session = getattr(det, attr)

        class Recording:
            def __init__(self, inner) -> None:
                self._inner = inner

            def run(self, *args, **kwargs):
                seen.add(threading.get_ident())
                return self._inner.run(*args, **kwargs)

            def get_inputs(self):
                return self._inner.get_inputs()

        monkeypatch.setattr(det, attr, Recording(session))
    return seen


def test_threads_1_is_serial(monkeypatch: pytest.MonkeyPatch, crowd: np.ndarray) -> None:
    det = MtcnnDetector(threads=1)
    assert det._pool is None
    seen = _record_run_threads(monkeypatch, det)
    det.detect(crowd)
    assert seen == {threading.get_ident()}


def test_threads_2_uses_two_threads(monkeypatch: pytest.MonkeyPatch, crowd: np.ndarray) -> None:
    det = MtcnnDetector(threads=2)
    assert det._pool is not None and det._pool._max_workers == 1  # the caller is the second thread
    seen = _record_run_threads(monkeypatch, det)
    det.detect(crowd)  # ~100 R-/O-net batches and a dozen P-net units: the worker takes some
    assert threading.get_ident() in seen and len(seen) == 2


def test_concurrent_callers_share_the_detector(parallel: MtcnnDetector, serial: MtcnnDetector) -> None:
    images = [_rgb(IMAGES / name) for name in PHOTOS]
    expected = [serial.detect(rgb) for rgb in images]
    with ThreadPoolExecutor(3) as callers:
        got = list(callers.map(parallel.detect, images * 2))
    for faces, want in zip(got, expected * 2, strict=True):
        _same(faces, want)


def test_worker_errors_propagate_and_the_pool_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    det = MtcnnDetector(threads=2)
    rgb = _rgb(IMAGES / "selfie-many-people.jpg")
    expected = det.detect(rgb)
    real = det._pnet
    calls = {"n": 0}

    class Failing:
        def run(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("boom")
            return real.run(*args, **kwargs)

    monkeypatch.setattr(det, "_pnet", Failing())
    with pytest.raises(RuntimeError, match="boom"):
        det.detect(rgb)
    monkeypatch.setattr(det, "_pnet", real)
    _same(det.detect(rgb), expected)


def test_the_engine_uses_the_cores_it_may_run_on_not_the_machines() -> None:
    # In a container limited to one CPU (cpuset / affinity mask) both the detector and the embedder default
    # to one thread; os.cpu_count() would report every core of the host.
    code = (
        "import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
        "os.environ.pop('FACESEARCH_THREADS', None); "
        "from facesearch.engine.engine import FaceEngine; e = FaceEngine(); "
        "print(e.detector.threads, e.embedder._session.get_session_options().intra_op_num_threads)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "1"]
