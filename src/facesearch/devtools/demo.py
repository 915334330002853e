"""The README's first command: index a gallery, search group photos face by face, measure accuracy, and
find every face in a crowd — on the embedded default, with pictures to look at."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from tqdm import tqdm

from facesearch.annotate import draw_faces, save_rgb
from facesearch.audit import JsonlAuditSink


def run_demo(datasets: Path, out: Path) -> int:
    from facesearch.cli.collection_commands import annotate_search
    from facesearch.cli.engine_commands import summarize_eval
    from facesearch.collections.service import RequestContext
    from facesearch.engine.engine import FaceEngine
    from facesearch.evaluation import evaluate, load_labelled_set
    from facesearch.settings import load_settings
    from facesearch.wiring import build_service

    faces_dev, crowd = datasets / "faces-dev", datasets / "crowd" / "largest_selfie.jpg"
    for path in (faces_dev, crowd):
        if not path.exists():
            raise FileNotFoundError(f"demo data missing: {path} (pass --datasets DIR)")
    data_dir = out / "data"
    shutil.rmtree(data_dir, ignore_errors=True)  # a fresh gallery each run
    out.mkdir(parents=True, exist_ok=True)
    engine = FaceEngine()
    labelled = load_labelled_set(faces_dev)
    ctx = RequestContext(caller="demo", purpose="README demo")

    service = build_service(load_settings(backend="embedded", home=data_dir), engine=engine)
    with service.store:
        service.create_collection(CollectionId="faces-dev", context=ctx)
        singles = [n for n in labelled.images if len(labelled.identities.get(n, [])) == 1]
        print(f"== 1. Index {len(singles)} labelled photos of {faces_dev} into an embedded collection")
        start = time.perf_counter()
        for name in tqdm(singles, unit="img", file=sys.stdout, mininterval=0.5):
            who = labelled.identities[name][0]
            service.index_faces(
                CollectionId="faces-dev",
                Image={"Bytes": (faces_dev / "images" / name).read_bytes()},
                ExternalImageId=f"{who}:{Path(name).stem}",
                MaxFaces=1,
                context=ctx,
            )
        described = service.describe_collection(CollectionId="faces-dev")
        print(f"{described['FaceCount']} faces indexed in {time.perf_counter() - start:.1f} s → {data_dir}")

        print("\n== 2. Search the group photos, every face")
        for name in ("couple.jpg", "selfie-many-people.jpg"):
            path = faces_dev / "images" / name
            result = service.search_faces_by_image(
                CollectionId="faces-dev", Image={"Bytes": path.read_bytes()}, AllFaces=True, MaxFaces=5, context=ctx
            )
            print(f"{name}: {len(result['SearchedFaces'])} faces")
            for i, face in enumerate(result["SearchedFaces"], 1):
                if face["FaceMatches"]:
                    best = face["FaceMatches"][0]
                    who = best["Face"]["ExternalImageId"].split(":")[0]
                    also = len({m["Face"]["ExternalImageId"] for m in face["FaceMatches"]})
                    print(f"  face {i}: {who}  similarity {best['Similarity']:.2f}  ({also} gallery photos matched)")
                else:
                    print(f"  face {i}: no one in the gallery (all below the search threshold)")
            print(f"  annotated → {annotate_search(path, result['SearchedFaces'], out / f'search-{name}')}")

    print(f"\n== 3. Accuracy of the engine on {faces_dev}")
    print(summarize_eval(evaluate(faces_dev, engine)))

    print(f"\n== 4. Every face in the crowd photo {crowd.name}")
    start = time.perf_counter()
    result = engine.analyze(crowd.read_bytes())
    elapsed = time.perf_counter() - start
    drawn = draw_faces(result.image.rgb, [f.box for f in result.faces], [f.landmarks for f in result.faces])
    path = save_rgb(drawn, out / "crowd_annotated.jpg")
    print(f"{len(result.faces)} faces detected, aligned and embedded in {elapsed:.2f} s → {path}")
    print("\n== 5. Follow people through a video and search each person once (detect → track → search)")
    video_step(faces_dev, engine, data_dir, out, ctx)
    log = getattr(service.audit, "inner", service.audit)  # the JSONL file under its sealing chain
    assert isinstance(log, JsonlAuditSink)
    print(f"\naudit log of every search: {log.path} (`facesearch audit verify` checks it)")
    return 0


def video_step(faces_dev: Path, engine, data_dir: Path, out: Path, ctx) -> None:
    """Render the walkers test video (people crossing a room; one of them a stranger), index a watchlist from the
    people's *other* photos, and run the local video pipeline on it."""
    from facesearch.devtools import video_scenes as vs
    from facesearch.settings import load_settings
    from facesearch.video.matcher import FrameMatcher, VideoFrame
    from facesearch.video.pipeline import annotate, run_pipeline
    from facesearch.video.search import TrackSearcher
    from facesearch.wiring import build_service

    scene = vs.scenes()["walkers"]
    rendered = [rgb for rgb, _ in vs.render(scene, vs.load_sprites(faces_dev, engine))]
    annotated: list = []
    service = build_service(load_settings(backend="embedded", home=data_dir), engine=engine)
    with service.store:
        service.create_collection(CollectionId="watchlist", context=ctx)
        for person, photos in vs.gallery(faces_dev).items():
            for photo in photos:
                service.index_faces(
                    CollectionId="watchlist", Image={"Bytes": photo.read_bytes()}, ExternalImageId=person,
                    MaxFaces=1, context=ctx,
                )  # fmt: skip
        frames = (VideoFrame("walkers", n, rgb, fps=scene.fps) for n, rgb in enumerate(rendered))
        people: dict[int, str] = {}

        def keep(record: dict, result) -> None:
            annotated.append(annotate(result.frame.rgb, record))
            for face in record["FaceSearchResponse"]:
                if face["MatchedFaces"]:
                    people[face["TrackId"]] = face["MatchedFaces"][0]["Face"]["ExternalImageId"]

        stats = run_pipeline(
            frames, FrameMatcher(engine), TrackSearcher(service, "watchlist", context=ctx), on_record=keep
        )
    path = vs.write_video(out / "walkers_annotated.avi", iter(annotated), scene.fps)
    c = stats.counters
    print(
        f"{stats.frames} frames at {scene.width}x{scene.height} in {stats.seconds:.1f} s ({stats.fps:.0f} frames/s): "
        f"{c['detected']} detected, {stats.tracks} tracks, {c['searches']} k-NN searches (a per-frame loop makes one "
        f"per face per frame); on the watchlist: {', '.join(sorted(set(people.values()))) or 'nobody'} → {path}"
    )
    print("  (person11 also walks through; not on the watchlist, never matched.) The command: facesearch video FILE "
          "--collection C --annotate OUT.mp4 --json OUT.jsonl")  # fmt: skip
