"""Video commands: ``facesearch video`` (the local detect → track → search pipeline) and ``facesearch stream put``
(send a video's frames to a Kinesis data stream as frame records)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm


def register(sub: argparse._SubParsersAction) -> None:
    from facesearch.cli.collection_commands import _backend_args

    video = sub.add_parser("video", help="find and follow faces in a video and search each person in a collection")
    video.add_argument("source", help="video file, webcam device number, or stream URL (rtsp://…)")
    video.add_argument("--collection", required=True)
    video.add_argument("--threshold", type=float, default=None, help="FaceMatchThreshold (default: the floor)")
    video.add_argument("--annotate", type=Path, metavar="OUT.mp4", help="write a video with boxes, tracks, names")
    video.add_argument("--json", type=Path, metavar="OUT.jsonl", help="one results-stream record per frame")
    video.add_argument("--fps", type=float, default=None, help="sample the source down to this rate")
    video.add_argument("--detect-every", type=int, default=3, help="detect on every k-th frame (default 3)")
    video.add_argument("--source-id", default=None, help="SourceId in the records (default: the file name)")
    _backend_args(video)
    video.set_defaults(func=cmd_video, needs_engine=True)

    stream = sub.add_parser("stream", help="send video frames to a Kinesis data stream")
    stream.add_argument("action", choices=["put"])
    stream.add_argument("source", help="video file, webcam device number, or stream URL (rtsp://…)")
    stream.add_argument("--stream", required=True, help="Kinesis data stream name")
    stream.add_argument("--camera-id", default=None, help="source id and partition key (default: the file name)")
    stream.add_argument("--fps", type=float, default=None, help="sample the source down to this rate")
    stream.add_argument("--max-width", type=int, default=None, help="downscale wider frames to this width")
    stream.add_argument("--realtime", action="store_true", help="pace a file at its frame rate, like a camera")
    stream.add_argument("--endpoint-url", default=None, help="e.g. LocalStack's http://127.0.0.1:4566")
    stream.add_argument("--region", default=None)
    stream.set_defaults(func=cmd_stream)


def _source_id(source: str, given: str | None) -> str:
    return given or (Path(source).stem if not source.isdigit() and "://" not in source else source)[:128]


def cmd_video(args: argparse.Namespace) -> int:
    import cv2

    from facesearch.cli.collection_commands import _service
    from facesearch.video.matcher import FrameMatcher, MatcherSettings, VideoFrame
    from facesearch.video.pipeline import annotate, run_pipeline
    from facesearch.video.producer import read_frames
    from facesearch.video.search import TrackSearcher

    if args.detect_every < 1:
        raise ValueError("--detect-every must be >= 1")
    service, ctx = _service(args)
    searcher = TrackSearcher(service, args.collection, threshold=args.threshold, context=ctx)
    matcher = FrameMatcher(service.engine, MatcherSettings(detect_every=args.detect_every))
    fps, estimate, source_frames = read_frames(args.source, fps=args.fps)
    source_id = _source_id(args.source, args.source_id)
    frames = (VideoFrame(source_id, f.frame_number, f.rgb, fps=fps) for f in source_frames)
    writer: Any = None
    out = args.json.open("w") if args.json else None
    bar = tqdm(total=estimate, unit="frame", disable=None, file=sys.stderr)
    people: dict[int, str] = {}

    def on_record(record: dict[str, Any], result: Any) -> None:
        nonlocal writer
        if out is not None:
            out.write(json.dumps(record, default=str) + "\n")
        for face in record["FaceSearchResponse"]:
            if face["MatchedFaces"]:
                best = face["MatchedFaces"][0]["Face"]
                people[face["TrackId"]] = best.get("ExternalImageId") or best["FaceId"]
        if args.annotate:
            rgb = annotate(result.frame.rgb, record)
            if writer is None:
                args.annotate.parent.mkdir(parents=True, exist_ok=True)
                fourcc = cv2.VideoWriter_fourcc(*("mp4v" if args.annotate.suffix.lower() == ".mp4" else "MJPG"))
                writer = cv2.VideoWriter(str(args.annotate), fourcc, fps, (rgb.shape[1], rgb.shape[0]))
                if not writer.isOpened():
                    raise OSError(f"cannot write video {args.annotate}")
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        bar.update(1)

    try:
        stats = run_pipeline(frames, matcher, searcher, on_record=on_record)
    finally:
        bar.close()
        if out is not None:
            out.close()
        if writer is not None:
            writer.release()
    c = stats.counters
    print(
        f"{stats.frames} frames in {stats.seconds:.1f} s ({stats.fps:.1f} frames/s): {c['detected']} detected, "
        f"{stats.tracks} tracks, {c['searches']} searches"
    )
    for track_id, name in sorted(people.items()):
        print(f"  track {track_id}: {name}")
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    import boto3  # the CLI is the AWS edge here: the producer itself takes the client as an argument

    from facesearch.video.producer import KinesisFrameProducer, put_video, read_frames

    client = boto3.client("kinesis", endpoint_url=args.endpoint_url, region_name=args.region)
    fps, estimate, frames = read_frames(args.source, fps=args.fps)
    camera = _source_id(args.source, args.camera_id)
    with tqdm(total=estimate, unit="frame", disable=None, file=sys.stderr) as bar:
        stats = put_video(
            KinesisFrameProducer(client, args.stream),
            frames,
            source_id=camera,
            fps=fps,
            max_width=args.max_width,
            realtime=args.realtime,
            on_frame=lambda _n: bar.update(1),
        )
    print(
        f"{stats.frames_sent} frames of {camera} sent to {args.stream} ({stats.bytes_sent / 1e6:.1f} MB, "
        f"{stats.calls} PutRecords calls, {stats.retried_records} records retried, "
        f"{stats.reencoded_frames} frames re-encoded to fit)"
    )
    return 0
