"""Video face search: our pipeline (detect every k-th frame → track → search each track) against the naive loop
(SearchFacesByImage with AllFaces on every frame), side by side in one run, on rendered videos with ground truth.

Both start from the same frame JPEGs (quality 90, as frame records carry them) and use the same service, engine and
embedded collection (the enrolled people of ``facesearch.devtools.video_scenes``: faces-dev person01..person10,
indexed from the photos the videos do not show):

- ours: ``cv2.imdecode`` → :class:`facesearch.video.matcher.FrameMatcher` (``--detect-every`` k, default 3 and 1)
  → :class:`TrackSearcher` for the tracks that need a search → one results-stream record per frame.
- naive: ``FaceCollectionService.search_faces_by_image(Image=JPEG, AllFaces=True, MaxFaces=5)`` per frame (the
  service's own detector settings: faces down to 20 px, which the naive loop pays for).

The pipelines alternate **frame by frame** (ours k=3, ours k=1, naive, next frame …), so background load on the
shared machine hits all of them alike; each pipeline's time is the sum of its own calls (wall clock, and the
process's CPU time: on a machine shared with other jobs the CPU ms per frame is the steadier number). k-NN searches are
counted at the store (every ``VectorStore.search`` call). Labels are scored against the ground truth with
``video_scenes.evaluate`` for every pipeline. The crowd pan's naive loop runs on its first ``--naive-crowd-frames``
frames only (each takes seconds); its fps is over those frames.

Usage (repository root, models built)::

    .venv/bin/python bench/bench_video.py                      # all scenes, ~10 minutes on a loaded 2-core box
    .venv/bin/python bench/bench_video.py --scenes five --detect-every 3 5

Prints a markdown table and writes ``bench/results/video-<UTC timestamp>.json`` (machine, load average at start
and end, versions, git commit, command).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("FACESEARCH_DATASETS", REPO.parent / "shared" / "datasets"))
RESULTS_DIR = REPO / "bench" / "results"
COLLECTION = "watchlist"
SCENES = ("five", "walkers", "crossing", "turning", "crowd_pan")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class CountingStore:
    """The service's store with its k-NN searches counted (everything else passes through)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.searches = 0

    def search(self, *args: Any, **kwargs: Any) -> Any:
        self.searches += 1
        return self._store.search(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class Ours:
    def __init__(self, service: Any, detect_every: int) -> None:
        from facesearch.video.matcher import FrameMatcher, MatcherSettings
        from facesearch.video.search import TrackSearcher

        self.name = f"ours k={detect_every}"
        self.matcher = FrameMatcher(service.engine, MatcherSettings(detect_every=detect_every))
        self.searcher = TrackSearcher(service, COLLECTION)
        self.state = self.matcher.new_state()

    def __call__(self, source_id: str, n: int, jpeg: bytes, fps: float) -> dict:
        from facesearch.video.matcher import VideoFrame
        from facesearch.video.records import frame_record

        rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        frame = VideoFrame(source_id, n, rgb, fps=fps, encoded=jpeg)
        result = self.matcher.process(frame, self.state)
        for track in result.to_search:
            self.matcher.apply_search(self.state, track, self.searcher.search(frame, track), n)
        return frame_record(result)


class Naive:
    name = "naive SearchFacesByImage"

    def __init__(self, service: Any) -> None:
        self.service = service

    def __call__(self, source_id: str, n: int, jpeg: bytes, fps: float) -> dict:
        from facesearch.errors import InvalidParameterException

        faces = []
        try:
            out = self.service.search_faces_by_image(
                CollectionId=COLLECTION, Image={"Bytes": jpeg}, AllFaces=True, MaxFaces=5
            )
            for i, searched in enumerate(out["SearchedFaces"]):
                faces.append(
                    {
                        "DetectedFace": {"BoundingBox": searched["BoundingBox"]},
                        "MatchedFaces": searched["FaceMatches"],
                        "TrackId": -(n * 1000 + i),  # no tracks: every face of every frame stands alone
                    }
                )
        except InvalidParameterException:  # no face in the frame
            pass
        return {"InputInformation": {"Frame": {"SourceId": source_id, "FrameNumber": n}}, "FaceSearchResponse": faces}


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]}
    with contextlib.suppress(OSError, StopIteration):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    import onnxruntime

    info["onnxruntime"] = onnxruntime.__version__
    info["opencv"] = cv2.__version__
    return info


def git_state() -> dict[str, str]:
    def run(*cmd: str) -> str:
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True).stdout.strip()

    return {"commit": run("git", "rev-parse", "HEAD"), "dirty": run("git", "status", "--porcelain", "src", "bench")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="+", default=list(SCENES), choices=SCENES)
    ap.add_argument("--detect-every", nargs="+", type=int, default=[3, 1])
    ap.add_argument("--naive-crowd-frames", type=int, default=12)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from facesearch.audit import MemoryAuditSink
    from facesearch.devtools import video_scenes as vs
    from facesearch.engine.engine import FaceEngine
    from facesearch.store.embedded import EmbeddedStore
    from facesearch.wiring import build_service

    started = dt.datetime.now(dt.UTC)
    load_start = os.getloadavg()
    faces_dev = DATASETS / "faces-dev"
    engine = FaceEngine()
    tmp = Path(tempfile.mkdtemp(prefix="bench-video-"))
    store = CountingStore(EmbeddedStore(tmp / "store"))
    service = build_service(engine=engine, store=store, audit=MemoryAuditSink())
    service.create_collection(CollectionId=COLLECTION)
    for person, photos in vs.gallery(faces_dev).items():
        for photo in photos:
            service.index_faces(
                CollectionId=COLLECTION, Image={"Bytes": photo.read_bytes()}, ExternalImageId=person, MaxFaces=1
            )
    sprites = vs.load_sprites(faces_dev, engine)
    all_scenes = vs.scenes(DATASETS / "crowd" / "largest_selfie.jpg")
    results: dict[str, Any] = {}
    for name in args.scenes:
        scene = all_scenes[name]
        rendered = list(vs.render(scene, sprites))
        jpegs = [cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
                 for rgb, _ in rendered]  # fmt: skip
        pipelines: list[Any] = [Ours(service, k) for k in args.detect_every] + [Naive(service)]
        naive_frames = args.naive_crowd_frames if scene.crowd is not None else scene.frames
        times = {p.name: 0.0 for p in pipelines}
        cpu = {p.name: 0.0 for p in pipelines}
        searches = {p.name: 0 for p in pipelines}
        records: dict[str, list[dict]] = {p.name: [] for p in pipelines}
        log(f"{name}: {scene.frames} frames {scene.width}x{scene.height}, {len(pipelines)} pipelines interleaved")
        for n, jpeg in enumerate(jpegs):
            for p in pipelines:
                if isinstance(p, Naive) and n >= naive_frames:
                    continue
                before = store.searches
                t, c = time.perf_counter(), time.process_time()
                records[p.name].append(p(name, n, jpeg, scene.fps))
                times[p.name] += time.perf_counter() - t
                cpu[p.name] += time.process_time() - c
                searches[p.name] += store.searches - before
        truths = [truth for _, truth in rendered]
        scene_out: dict[str, Any] = {"frames": scene.frames, "size": f"{scene.width}x{scene.height}"}
        for p in pipelines:
            count = len(records[p.name])
            ev = vs.evaluate(scene, truths[:count], records[p.name])
            scene_out[p.name] = {
                "frames": count,
                "seconds": round(times[p.name], 3),
                "fps": round(count / times[p.name], 2),
                "cpu_ms_per_frame": round(cpu[p.name] / count * 1000, 2),
                "knn_searches": searches[p.name],
                "knn_per_frame": round(searches[p.name] / count, 3),
                "max_faces_in_frame": max(len(r["FaceSearchResponse"]) for r in records[p.name]),
                **ev.as_dict(),
            }
            if isinstance(p, Ours):
                scene_out[p.name]["counters"] = dict(p.state.counters)
                scene_out[p.name]["seconds_in"] = {k: round(v, 3) for k, v in p.state.seconds.items()}
        results[name] = scene_out
        log(json.dumps(scene_out))
    load_end = os.getloadavg()
    report = {
        "started": started.isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "machine": machine(),
        "load_average_start": load_start,
        "load_average_end": load_end,
        "git": git_state(),
        "scenes": results,
    }
    out = args.out or RESULTS_DIR / f"video-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"load average start {load_start[0]:.1f}, end {load_end[0]:.1f}; results in {out.relative_to(REPO)}\n")
    print(
        "| scene | pipeline | frames | fps (wall) | speed-up | CPU ms/frame | k-NN/frame | fewer k-NN | labelled ok "
        "| switches | false matches |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, scene_out in results.items():
        naive = scene_out[Naive.name]
        for pname, r in scene_out.items():
            if not isinstance(r, dict):
                continue
            speed = r["fps"] / naive["fps"] if naive["fps"] else float("nan")
            fewer = naive["knn_per_frame"] / r["knn_per_frame"] if r["knn_per_frame"] else float("inf")
            print(
                f"| {name} {scene_out['size']} | {pname} | {r['frames']} | {r['fps']:.1f} | {speed:.1f}x | "
                f"{r['cpu_ms_per_frame']:.0f} | "
                f"{r['knn_per_frame']:.3f} | {fewer:.0f}x | {r['accuracy'] * 100:.1f} % | {r['identity_switches']} | "
                f"{r['false_matches']} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
