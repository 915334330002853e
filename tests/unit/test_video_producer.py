"""The frame producer against moto's in-process Kinesis: batching within PutRecords' limits, retrying only the
records that failed, back-off while throttled, and nothing lost or doubled."""

from __future__ import annotations

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from facesearch.video.frames import FrameHeader, decode_frame_record, encode_jpeg
from facesearch.video.producer import MAX_BATCH_RECORDS, FramesNotSent, KinesisFrameProducer, put_video, read_frames

STREAM = "frames"


@pytest.fixture
def kinesis(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("kinesis", region_name="us-east-1")
        client.create_stream(StreamName=STREAM, ShardCount=2)
        yield client


def stream_frames(client) -> list[tuple[str, int]]:
    """Every record in the stream, as (source id, frame number), shard by shard in arrival order."""
    out = []
    for shard in client.list_shards(StreamName=STREAM)["Shards"]:
        it = client.get_shard_iterator(StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        while it:
            page = client.get_records(ShardIterator=it, Limit=1000)
            for r in page["Records"]:
                h = decode_frame_record(r["Data"]).header
                assert r["PartitionKey"] == h.source_id
                out.append((h.source_id, h.frame_number))
            it = page.get("NextShardIterator") if page["Records"] else None
    return out


class FlakyKinesis:
    """moto's Kinesis, except that chosen calls report chosen records as failed (and do not store them), as
    Kinesis does under partial throttling; or fail the whole call with a throttling error."""

    def __init__(self, client, fail: dict[int, set[int]] | None = None, throttle_calls: set[int] | None = None):
        self.client = client
        self.fail = fail or {}
        self.throttle_calls = throttle_calls or set()
        self.calls: list[int] = []

    def put_records(self, StreamName: str, Records: list[dict]):
        call = len(self.calls)
        self.calls.append(len(Records))
        if call in self.throttle_calls:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "PutRecords"
            )
        failing = self.fail.get(call, set())
        keep = [r for i, r in enumerate(Records) if i not in failing]
        stored = iter(self.client.put_records(StreamName=StreamName, Records=keep)["Records"] if keep else [])
        results = [
            {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "rate exceeded"}
            if i in failing
            else next(stored)
            for i in range(len(Records))
        ]
        return {"FailedRecordCount": len(failing), "Records": results}


def _queue(producer: KinesisFrameProducer, count: int, source: str = "cam1") -> None:
    jpeg = encode_jpeg(np.zeros((8, 8, 3), np.uint8))
    for n in range(count):
        producer.put_record(FrameHeader(source, n, 1.0 + n, 10, 8, 8), jpeg)


def test_frames_arrive_once_each_in_order_per_camera(kinesis):
    with KinesisFrameProducer(kinesis, STREAM) as producer:
        _queue(producer, 30, "cam1")
        _queue(producer, 30, "cam2")
    got = stream_frames(kinesis)
    assert sorted(got) == sorted([("cam1", n) for n in range(30)] + [("cam2", n) for n in range(30)])
    for cam in ("cam1", "cam2"):
        assert [n for s, n in got if s == cam] == list(range(30))
    assert producer.stats.frames_sent == 60


def test_batches_stay_within_500_records(kinesis):
    flaky = FlakyKinesis(kinesis)
    producer = KinesisFrameProducer(flaky, STREAM, max_buffer_seconds=3600)
    _queue(producer, 1200)
    producer.flush()
    assert flaky.calls == [MAX_BATCH_RECORDS, MAX_BATCH_RECORDS, 200]
    assert len(stream_frames(kinesis)) == 1200


def test_batches_stay_within_5_mib(kinesis):
    flaky = FlakyKinesis(kinesis)
    producer = KinesisFrameProducer(flaky, STREAM, max_buffer_seconds=3600)
    big = b"\xff\xd8" + bytes(900_000)
    for n in range(12):
        producer.put_record(FrameHeader("cam", n, 0.0, 1, 8, 8), big)
    producer.flush()
    assert flaky.calls == [5, 5, 2]


def test_only_the_failed_records_of_a_batch_are_retried_after_a_back_off(kinesis):
    delays: list[float] = []
    flaky = FlakyKinesis(kinesis, fail={0: {1, 3, 5}, 1: {0}})
    producer = KinesisFrameProducer(flaky, STREAM, sleep=delays.append, max_buffer_seconds=3600)
    _queue(producer, 8)
    producer.flush()
    assert flaky.calls == [8, 3, 1]
    assert len(delays) == 2 and all(d >= 0 for d in delays)
    assert sorted(n for _, n in stream_frames(kinesis)) == list(range(8))  # each exactly once
    assert producer.stats.retried_records == 4


def test_a_throttled_call_is_retried_whole_with_growing_back_off(kinesis):
    delays: list[float] = []
    flaky = FlakyKinesis(kinesis, throttle_calls={0, 1, 2})
    producer = KinesisFrameProducer(flaky, STREAM, sleep=delays.append, base_delay=1.0, max_delay=100)
    producer.rng.uniform = lambda lo, hi: hi  # the jitter's upper bound, to see the exponent
    _queue(producer, 3)
    producer.flush()
    assert delays == [1.0, 2.0, 4.0]
    assert sorted(n for _, n in stream_frames(kinesis)) == [0, 1, 2]


def test_frames_still_failing_after_max_attempts_are_reported_not_dropped(kinesis):
    flaky = FlakyKinesis(kinesis, fail={0: {2}, 1: {0}, 2: {0}})
    producer = KinesisFrameProducer(flaky, STREAM, sleep=lambda s: None, max_attempts=3)
    _queue(producer, 4)
    with pytest.raises(FramesNotSent) as err:
        producer.flush()
    assert err.value.frames == [("cam1", 2, "ProvisionedThroughputExceededException")]
    assert sorted(n for _, n in stream_frames(kinesis)) == [0, 1, 3]


def test_other_errors_are_raised_at_once(kinesis):
    producer = KinesisFrameProducer(kinesis, "no-such-stream", sleep=lambda s: None)
    _queue(producer, 1)
    with pytest.raises(ClientError, match="ResourceNotFound"):
        producer.flush()


def test_put_video_samples_a_file_to_the_requested_rate(kinesis, tmp_path):
    import cv2

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for n in range(30):
        writer.write(np.full((48, 64, 3), n * 8, np.uint8))
    writer.release()
    fps, estimate, frames = read_frames(str(path), fps=10)
    assert fps == 10 and estimate == 10
    stats = put_video(KinesisFrameProducer(kinesis, STREAM), frames, source_id="file1", fps=fps)
    assert stats.frames_sent == 10
    assert sorted(stream_frames(kinesis)) == [("file1", n) for n in range(10)]


def test_a_file_that_is_not_a_video_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video")
    with pytest.raises(ValueError, match=r"not a video|no frames"):
        _, _, frames = read_frames(str(path))
        list(frames)


def test_a_live_camera_is_not_held_back_by_batching(kinesis):
    """With a latency budget of 0 s every frame goes out at once instead of waiting for a full batch."""
    flaky = FlakyKinesis(kinesis)
    producer = KinesisFrameProducer(flaky, STREAM, max_buffer_seconds=0.0)
    _queue(producer, 3)
    assert flaky.calls == [1, 1, 1]


def test_put_frame_encodes_rgb_and_marks_frames_reencoded_to_fit(kinesis):
    with KinesisFrameProducer(kinesis, STREAM) as producer:
        producer.put_frame(np.zeros((48, 64, 3), np.uint8), source_id="cam9", frame_number=4, fps=12.5)
    shard = kinesis.list_shards(StreamName=STREAM)["Shards"]
    records = []
    for s in shard:
        it = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON")
        records += kinesis.get_records(ShardIterator=it["ShardIterator"])["Records"]
    (record,) = records
    header = decode_frame_record(record["Data"]).header
    assert (header.source_id, header.frame_number, header.fps, header.width, header.height) == ("cam9", 4, 12.5, 64, 48)
    assert not header.reencoded and producer.stats.reencoded_frames == 0


def test_cli_stream_put_sends_every_sampled_frame(kinesis, tmp_path, capsys):
    import cv2

    from facesearch.cli import main

    path = tmp_path / "door-cam.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (96, 64))
    for n in range(40):
        writer.write(np.full((64, 96, 3), n * 5, np.uint8))
    writer.release()
    assert main(["stream", "put", str(path), "--stream", STREAM, "--fps", "5", "--region", "us-east-1"]) == 0
    assert sorted(stream_frames(kinesis)) == [("door-cam", n) for n in range(10)]
    assert "10 frames of door-cam sent to frames" in capsys.readouterr().out
