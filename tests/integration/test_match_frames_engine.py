"""match_frames with the real engine: one rendered camera (events shaped like events/kinesis_frames.json, frames
made by our writer) through the handler in several batches, moto's Kinesis/DynamoDB/EventBridge, the embedded
store. Track state crosses batches through DynamoDB; the results match the local pipeline's labels; a crash
mid-batch and the redelivery lose no frame and double none; a track's first match is announced once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from functions_harness import AUDIT, aws, lambda_context, load_function, tapped_events  # noqa: F401
from video_harness import create_video_resources, kinesis_event, processor_request, read_results, video_env

from facesearch.devtools import video_scenes as vs
from facesearch.video.frames import FrameHeader, encode_frame_record, jpeg_for_record
from facesearch.video.matcher import FrameMatcher, frame_from_record
from facesearch.video.pipeline import run_pipeline
from facesearch.video.search import TrackSearcher

SCENE = "crossing"
BATCH = 25


@pytest.fixture(scope="module")
def sprites(engine, faces_dev: Path):
    return vs.load_sprites(faces_dev, engine)


@pytest.fixture(scope="module")
def rendered(sprites):
    scene = vs.scenes()[SCENE]
    start = time.time()
    frames, truths = [], []
    for n, (rgb, truth) in enumerate(vs.render(scene, sprites)):
        jpeg, w, h, _ = jpeg_for_record(rgb, SCENE)
        header = FrameHeader(SCENE, n, start + n / scene.fps, scene.fps, w, h)
        frames.append(encode_frame_record(header, jpeg))
        truths.append(truth)
    return scene, frames, truths


@pytest.fixture
def video(aws, monkeypatch, engine, faces_dev):  # noqa: F811
    video_env(monkeypatch)
    resources = create_video_resources()
    module = load_function("match_frames")
    module.runtime.service.engine = engine
    module.matcher.engine = engine
    service = module.runtime.service
    service.create_collection(CollectionId="watchlist")
    for person, photos in vs.gallery(faces_dev).items():
        for photo in photos:
            service.index_faces(
                CollectionId="watchlist", Image={"Bytes": photo.read_bytes()}, ExternalImageId=person, MaxFaces=1
            )
    module.consumer.processors.create_stream_processor(**processor_request())
    module.consumer.processors.start_stream_processor(Name="cam-watch")
    return {**resources, **aws, "app": module}


def deliver(video, frames: list[bytes], first: int) -> dict:
    return video["app"].handler(kinesis_event(frames, first_sequence=first, partition_key=SCENE), lambda_context())


def local_labels(video, frames: list[bytes]) -> list[list]:
    service = video["app"].runtime.service
    records: list[dict] = []
    run_pipeline(
        (frame_from_record(f) for f in frames),
        FrameMatcher(service.engine),
        TrackSearcher(service, "watchlist"),
        on_record=lambda record, _: records.append(record),
    )
    return [sorted(str(vs.label_of(f)) for f in r["FaceSearchResponse"]) for r in records]


def test_one_camera_in_batches_matches_the_local_pipeline(video, rendered):
    scene, frames, truths = rendered
    for start in range(0, len(frames), BATCH):
        assert deliver(video, frames[start : start + BATCH], start) == {"batchItemFailures": []}
    results = read_results(video["kinesis"])
    numbers = [r["InputInformation"]["Frame"]["FrameNumber"] for r in results]
    assert numbers == list(range(scene.frames))  # every frame once, in order (partition key = camera)
    ev = vs.evaluate(scene, truths, results)
    assert ev.accuracy >= 0.95 and ev.false_matches == 0 and ev.identity_switches <= 1, ev.as_dict()
    # A track's first match is announced once: one event per person track, not one per frame or per search.
    announced = [
        e["detail"] for e in tapped_events(video["sqs"], video["tap_url"]) if e["detail-type"] == "FaceTrackMatched"
    ]
    assert announced and len(announced) <= 4
    assert {a["Face"]["ExternalImageId"] for a in announced} <= {"person04", "person05"}
    assert all(a["SourceId"] == SCENE and a["StreamProcessorName"] == "cam-watch" for a in announced)
    # Every track search is audited by the service, as the processor's caller, with the frame it came from.
    searches = [r for r in audit_records(video["s3"]) if r["operation"] == "SearchFacesByDescriptor"]
    assert searches and all(r["caller"] == "stream-processor:cam-watch" for r in searches)
    assert all(r["details"]["source_id"] == SCENE and r["query_image_sha256"] for r in searches)
    # The same labels as the local pipeline over the same frames (run last: its searches are audited too).
    cloud = [sorted(str(vs.label_of(f)) for f in r["FaceSearchResponse"]) for r in results]
    same = sum(a == b for a, b in zip(cloud, local_labels(video, frames), strict=True))
    assert same >= 0.95 * scene.frames  # state restored between batches: only the motion reference is not kept


def audit_records(s3) -> list[dict]:
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=AUDIT):
        for obj in page.get("Contents", []):
            out.append(json.loads(s3.get_object(Bucket=AUDIT, Key=obj["Key"])["Body"].read()))
    return out


def test_a_crash_mid_batch_then_redelivery_loses_no_frame_and_doubles_none(video, rendered, monkeypatch):
    scene, frames, _ = rendered
    matcher = video["app"].consumer.matcher
    real = matcher.process
    calls = {"n": 0}

    def crash_once_after_ten(*args, **kwargs):
        result = real(*args, **kwargs)  # the camera's live state has moved on to this frame ...
        calls["n"] += 1
        if calls["n"] == 11:  # ... when the eleventh frame fails halfway
            raise ConnectionError("the container lost its connection mid-batch")
        return result

    monkeypatch.setattr(matcher, "process", crash_once_after_ten)
    batch = frames[:BATCH]
    response = deliver(video, batch, 0)
    failed = [int(f["itemIdentifier"]) for f in response["batchItemFailures"]]
    assert len(failed) == BATCH - 10  # the failed record and every later one: Lambda restarts from the first
    first_failed = min(failed) - int(kinesis_event([b""])["Records"][0]["kinesis"]["sequenceNumber"])
    assert first_failed == 10
    # Lambda redelivers from the checkpoint; a bisected retry may also resend records already processed.
    assert deliver(video, frames[5:BATCH], 5) == {"batchItemFailures": []}
    assert deliver(video, frames[BATCH:], BATCH) == {"batchItemFailures": []}
    numbers = [r["InputInformation"]["Frame"]["FrameNumber"] for r in read_results(video["kinesis"])]
    assert numbers == list(range(scene.frames))
