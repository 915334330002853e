"""What the match_frames tests share: the frames/results streams and the state table in moto, a stream processor,
and Kinesis events in the shape of events/kinesis_frames.json carrying frame records made by our writer."""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any

import numpy as np
from functions_harness import REGION, function_env, sample  # noqa: F401

from facesearch.video.frames import FrameHeader, encode_frame_record, encode_jpeg

ACCOUNT = "123456789012"
FRAMES = "facesearch-frames"
OUTPUT = "facesearch-results-stream"
STATE = "facesearch-video-state"
FRAMES_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{FRAMES}"
OUTPUT_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{OUTPUT}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/facesearch-processor"


def video_env(monkeypatch: Any) -> None:
    for name, value in {
        "FACESEARCH_FRAMES_STREAM": FRAMES,
        "FACESEARCH_RESULTS_STREAM": OUTPUT,
        "FACESEARCH_STATE_TABLE": STATE,
        "FACESEARCH_PROCESSOR_CACHE_SECONDS": "0",
    }.items():
        monkeypatch.setenv(name, value)


def create_video_resources() -> dict[str, Any]:
    import boto3

    kinesis = boto3.client("kinesis", region_name=REGION)
    for name in (FRAMES, OUTPUT):
        kinesis.create_stream(StreamName=name, ShardCount=1)
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName=STATE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return {"kinesis": kinesis}


def processor_request(collection: str = "watchlist", threshold: float | None = None) -> dict[str, Any]:
    face_search: dict[str, Any] = {"CollectionId": collection}
    if threshold is not None:
        face_search["FaceMatchThreshold"] = threshold
    return {
        "Name": "cam-watch",
        "Input": {"KinesisVideoStream": {"Arn": FRAMES_ARN}},
        "Output": {"KinesisDataStream": {"Arn": OUTPUT_ARN}},
        "RoleArn": ROLE,
        "Settings": {"FaceSearch": face_search},
    }


def flat_frame(source: str, n: int, *, ts: float | None = None, size: tuple[int, int] = (64, 48)) -> bytes:
    w, h = size
    rgb = np.full((h, w, 3), (120, 160, 200), dtype=np.uint8)
    header = FrameHeader(source, n, time.time() if ts is None else ts, 10.0, w, h)
    return encode_frame_record(header, encode_jpeg(rgb))


def kinesis_event(datas: list[bytes], *, first_sequence: int = 0, partition_key: str = "cam-1") -> dict[str, Any]:
    template = sample("kinesis_frames.json")["Records"][0]
    records = []
    for i, data in enumerate(datas):
        record = copy.deepcopy(template)
        seq = str(49_657_000_000_000_000_000_000_000_000_000_000_000_000_000_000 + first_sequence + i)
        record["kinesis"].update(
            data=base64.b64encode(data).decode(),
            sequenceNumber=seq,
            partitionKey=partition_key,
            approximateArrivalTimestamp=time.time(),
        )
        record["eventID"] = f"shardId-000000000000:{seq}"
        records.append(record)
    return {"Records": records}


def read_results(kinesis: Any, stream: str = OUTPUT) -> list[dict[str, Any]]:
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    out = []
    while True:
        page = kinesis.get_records(ShardIterator=it, Limit=1000)
        out += [json.loads(r["Data"]) for r in page["Records"]]
        if not page["Records"]:
            return out
        it = page["NextShardIterator"]
