"""match_frames: Kinesis frame records (events/kinesis_frames.json's shape, frames made by our writer) through the
handler with moto's Kinesis, DynamoDB and EventBridge and the embedded store.

Every case here is decided before face detection (the unit engine refuses to detect); frames with faces, state
carried across batches and a crash mid-batch are in tests/integration/test_match_frames_engine.py.
"""

from __future__ import annotations

import json
import time

import pytest
from functions_harness import DecodeOnlyEngine, aws, lambda_context, load_function  # noqa: F401
from video_harness import (
    FRAMES_ARN,
    STATE,
    create_video_resources,
    flat_frame,
    kinesis_event,
    processor_request,
    read_results,
    video_env,
)

from facesearch.aws.video import CAMERA_PREFIX
from facesearch.video.frames import FrameHeader, encode_frame_record


@pytest.fixture
def video(aws, monkeypatch):  # noqa: F811
    video_env(monkeypatch)
    resources = create_video_resources()
    module = load_function("match_frames")
    module.runtime.service.engine = DecodeOnlyEngine()
    module.runtime.service.create_collection(CollectionId="watchlist")
    resources["app"] = module
    resources["processors"] = module.consumer.processors
    resources["ddb"] = aws["ddb"]
    return resources


def running(video):
    video["processors"].create_stream_processor(**processor_request())
    video["processors"].start_stream_processor(Name="cam-watch")


def run(video, datas, **kw):
    return video["app"].handler(kinesis_event(datas, **kw), lambda_context())


def metric_counts(capsys, name: str) -> dict[str, float]:
    """``{dimension value: count}`` of an EMF metric written by Powertools on stdout."""
    counts: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and name in doc and "_aws" in doc:
            key = doc.get("Reason") or doc.get("Kind") or ""
            value = doc[name]
            counts[key] = counts.get(key, 0) + (sum(value) if isinstance(value, list) else value)
    return counts


def test_the_sample_event_is_real_shaped_and_its_bad_record_is_counted_not_retried(video, capsys):
    from functions_harness import sample

    running(video)
    event = sample("kinesis_frames.json")
    assert all(r["eventSourceARN"] == FRAMES_ARN for r in event["Records"])
    assert video["app"].handler(event, lambda_context()) == {"batchItemFailures": []}
    skipped = metric_counts(capsys, "SkippedFrames")
    # The sample's frames were produced in 2025: older than the maximum frame age, skipped and counted.
    assert skipped == {"StaleFrame": 3}
    assert read_results(video["kinesis"]) == []


@pytest.mark.parametrize(
    "data",
    [
        b"no header at all",
        flat_frame("cam-1", 0)[:40] + b"\xff\xd8\xff\xe0 corrupt jpeg body",
        b"FSVF" + b"\0" * (2 * 1024 * 1024),
    ],
    ids=["no-header", "corrupt-jpeg", "oversized"],
)
def test_a_bad_record_is_logged_counted_and_acknowledged(video, capsys, caplog, data):
    running(video)
    assert run(video, [data]) == {"batchItemFailures": []}
    assert "bad frame record, not retried" in caplog.text
    assert metric_counts(capsys, "Errors") == {"BadRecord": 1}
    assert read_results(video["kinesis"]) == []


def test_a_header_that_disagrees_with_its_jpeg_is_a_bad_record(video, caplog):
    running(video)
    good = flat_frame("cam-1", 0, size=(64, 48))
    header = FrameHeader("cam-1", 0, time.time(), 10.0, 640, 480)
    lying = encode_frame_record(header, good[header_len(good) :])
    assert run(video, [lying]) == {"batchItemFailures": []}
    (logged,) = [r for r in caplog.records if r.getMessage() == "bad frame record, not retried"]
    assert "header says 640x480" in logged.reason


def header_len(data: bytes) -> int:
    return int.from_bytes(data[6:8], "big")


def test_a_stale_frame_is_skipped_and_counted(video, capsys):
    running(video)
    assert run(video, [flat_frame("cam-1", 5, ts=time.time() - 3600)]) == {"batchItemFailures": []}
    assert metric_counts(capsys, "SkippedFrames") == {"StaleFrame": 1}
    assert "Item" not in video["ddb"].get_item(TableName=STATE, Key={"pk": {"S": CAMERA_PREFIX + "cam-1"}})


def seed_camera(video, last_frame: int, last_ts: float) -> None:
    consumer = video["app"].consumer
    camera = consumer.states.load("cam-1")
    camera.state.last_frame, camera.last_ts = last_frame, last_ts
    consumer.states.save("cam-1", camera)


def test_a_duplicate_or_late_frame_is_skipped_and_the_state_is_untouched(video, capsys):
    running(video)
    now = time.time()
    seed_camera(video, 10, now)
    assert run(video, [flat_frame("cam-1", 10, ts=now - 1), flat_frame("cam-1", 7, ts=now - 2)]) == {
        "batchItemFailures": []
    }
    assert metric_counts(capsys, "SkippedFrames") == {"DuplicateFrame": 2}
    item = video["ddb"].get_item(TableName=STATE, Key={"pk": {"S": CAMERA_PREFIX + "cam-1"}})["Item"]
    assert item["last_frame"] == {"N": "10"}
    assert read_results(video["kinesis"]) == []


def test_a_stopped_processor_processes_nothing_and_counts_the_frames(video, capsys):
    video["processors"].create_stream_processor(**processor_request())  # created STOPPED
    assert run(video, [flat_frame("cam-1", n) for n in range(3)]) == {"batchItemFailures": []}
    assert metric_counts(capsys, "SkippedFrames") == {"ProcessorStopped": 3}
    assert read_results(video["kinesis"]) == []


def test_a_stream_without_a_processor_is_acknowledged_warned_and_counted(video, capsys, caplog):
    assert run(video, [flat_frame("cam-1", 0)]) == {"batchItemFailures": []}
    assert "frame skipped" in caplog.text
    assert metric_counts(capsys, "SkippedFrames") == {"NoProcessor": 1}


def test_a_transient_failure_fails_that_record_and_every_later_one(video):
    running(video)
    video["ddb"].delete_table(TableName=STATE)  # the state store is gone: nothing can be processed safely
    event = kinesis_event([flat_frame("cam-1", n) for n in range(3)], first_sequence=100)
    # The processor lookup also reads the table, so the whole batch fails: Lambda retries it (bisects, then the
    # on-failure destination); no frame is acknowledged unprocessed.
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    with pytest.raises(BatchProcessingError):
        video["app"].handler(event, lambda_context())


def test_after_a_failed_record_the_rest_of_the_batch_is_left_for_redelivery(video, monkeypatch):
    running(video)
    consumer = video["app"].consumer
    calls = []

    def flaky_load(source_id):
        calls.append(source_id)
        raise ConnectionError("DynamoDB unreachable")

    monkeypatch.setattr(consumer.states, "load", flaky_load)
    datas = [flat_frame("cam-1", 0, ts=time.time() - 3600), flat_frame("cam-1", 1), flat_frame("cam-1", 2)]
    event = kinesis_event(datas, first_sequence=200)
    response = video["app"].handler(event, lambda_context())
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    # The stale first frame is acknowledged; frame 1 failed; frame 2 was not even tried (BatchAborted).
    assert failed == [
        event["Records"][1]["kinesis"]["sequenceNumber"],
        event["Records"][2]["kinesis"]["sequenceNumber"],
    ]
    assert calls == ["cam-1"]


def test_two_containers_cannot_interleave_a_camera(video):
    from facesearch.aws.video import CameraStateConflict

    states = video["app"].consumer.states
    mine, theirs = states.load("cam-1"), states.load("cam-1")
    theirs.state.last_frame, theirs.last_ts = 4, time.time()
    states.save("cam-1", theirs)
    mine.state.last_frame, mine.last_ts = 3, time.time()
    with pytest.raises(CameraStateConflict):
        states.save("cam-1", mine)  # written conditionally on the last frame it was read with
    again = states.load("cam-1")
    assert again.state.last_frame == 4 and again.expected_last_frame == 4
    again.state.last_frame = 9
    states.save("cam-1", again)
    assert states.load("cam-1").state.last_frame == 9


def test_an_expired_camera_state_is_not_used_but_still_guards_the_write(video):
    states = video["app"].consumer.states
    seed_camera(video, 10, time.time())
    video["ddb"].update_item(
        TableName=STATE,
        Key={"pk": {"S": CAMERA_PREFIX + "cam-1"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    camera = states.load("cam-1")  # TTL deletion lags behind expiry: the item may still be there
    assert camera.state.last_frame is None and camera.expected_last_frame == 10


def test_a_camera_that_restarts_its_numbering_gets_a_fresh_state(video):
    """A frame numbered at or below the camera's last one is a duplicate unless it was produced later than the
    last one: then the camera restarted (numbering from 0) and is tracked afresh."""
    from facesearch.aws.video import RecordOutcome

    running(video)
    consumer = video["app"].consumer
    seed_camera(video, 50, time.time() - 10)
    processed = []
    consumer._process = lambda frame, camera, processor, out: processed.append(
        (frame.frame_number, camera.state.last_frame)
    )
    consumer.begin()
    out = consumer.handle(flat_frame("cam-1", 0), FRAMES_ARN)
    assert isinstance(out, RecordOutcome) and out.kind == "Processed" and "restarted" in (out.reason or "")
    assert processed == [(0, None)]  # a fresh state: no last frame


def test_the_processor_is_cached_for_a_few_seconds_and_a_stop_then_takes_effect(video, monkeypatch):
    consumer = video["app"].consumer
    consumer.cache_seconds = 5.0
    lookups = []
    real = consumer.processors.for_stream
    monkeypatch.setattr(consumer.processors, "for_stream", lambda arn: lookups.append(arn) or real(arn))
    assert consumer.processor_for(FRAMES_ARN).doc is None
    assert consumer.processor_for(FRAMES_ARN).doc is None  # a stream without a processor is cached as such
    assert len(lookups) == 1
    consumer.cache_seconds = 0.0
    running(video)
    assert consumer.processor_for(FRAMES_ARN).doc["Status"] == "RUNNING"
    assert consumer.processor_for(FRAMES_ARN).searcher is not None
    video["processors"].stop_stream_processor(Name="cam-watch")
    stopped = consumer.processor_for(FRAMES_ARN)
    assert stopped.doc["Status"] == "STOPPED" and stopped.searcher is None
