"""Writes ``kinesis_frames.json``: a Kinesis event as match_frames receives it through the frames stream's
enhanced fan-out consumer (Lambda's ``aws:kinesis`` record shape; ``data`` is the base64 of the record bytes),
with three frame records of camera ``cam-1`` made by our own writer (``facesearch.video.frames``) and one record
without a frame header. Run ``python events/make_kinesis_events.py`` (deterministic); tests replace ``data``,
sequence numbers and timestamps with their own frames."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from facesearch.video.frames import FrameHeader, encode_frame_record, encode_jpeg

HERE = Path(__file__).parent
REGION = "us-east-1"
ACCOUNT = "123456789012"
FRAMES_STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/facesearch-frames"
START_MS = 1_764_504_000_000  # 2025-11-30T12:00:00Z
SEQUENCE_BASE = 49_657_000_000_000_000_000_000_000_000_000_000_000_000_000_000


def kinesis_record(data: bytes, partition_key: str, n: int, arrival: float) -> dict:
    sequence = str(SEQUENCE_BASE + n)
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence,
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/facesearch-match-frames",
        "awsRegion": REGION,
        "eventSourceARN": FRAMES_STREAM_ARN,
    }


def frame(n: int) -> bytes:
    rgb = np.full((48, 64, 3), (120, 160, 200), dtype=np.uint8)
    rgb[:, : 8 * (n + 1)] = (30, 30, 30)  # each frame differs
    header = FrameHeader("cam-1", n, (START_MS + n * 100) / 1000.0, 10.0, 64, 48)
    return encode_frame_record(header, encode_jpeg(rgb))


def main() -> None:
    records = [kinesis_record(frame(n), "cam-1", n, (START_MS + n * 100 + 40) / 1000.0) for n in range(3)]
    records.append(kinesis_record(b"not a frame record", "cam-1", 3, (START_MS + 340) / 1000.0))
    (HERE / "kinesis_frames.json").write_text(json.dumps({"Records": records}, indent=2) + "\n")


if __name__ == "__main__":
    main()
