"""Send video frames to a Kinesis data stream: PutRecords in batches within Kinesis's limits, retrying only the
records that failed, with exponential back-off (full jitter) while the stream is throttled.

Nothing is dropped silently: a frame that still fails after ``max_attempts`` raises :class:`FramesNotSent` naming
every unsent frame. Retried records can land after later frames of the same camera (Kinesis orders by arrival
within a shard); consumers order and de-duplicate by the header's frame number (docs/VIDEO.md).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from facesearch.video.frames import FrameHeader, encode_frame_record, jpeg_for_record

MAX_BATCH_RECORDS = 500  # PutRecords: records per call
MAX_BATCH_BYTES = 5 * 1024 * 1024  # PutRecords: data + partition keys per call
THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "KMSThrottlingException", "ThrottlingException"}
)


class FramesNotSent(RuntimeError):
    """Frames that Kinesis did not accept after every retry; ``frames`` lists (source id, frame number, error)."""

    def __init__(self, frames: list[tuple[str, int, str]]) -> None:
        self.frames = frames
        first = ", ".join(f"{s}#{n} ({e})" for s, n, e in frames[:5])
        super().__init__(f"{len(frames)} frame(s) not sent after retries: {first}{' …' if len(frames) > 5 else ''}")


@dataclass
class PutStats:
    frames_sent: int = 0
    bytes_sent: int = 0
    calls: int = 0
    retried_records: int = 0
    throttled_calls: int = 0
    reencoded_frames: int = 0
    shards: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Entry:
    header: FrameHeader
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data) + len(self.header.source_id.encode())


class KinesisFrameProducer:
    """Buffers frames and sends them with PutRecords; use as a context manager or call :meth:`flush` at the end.

    A batch is sent when it is full (500 records or 5 MiB) or when its oldest frame has waited
    ``max_buffer_seconds`` (a live camera's latency budget), whichever comes first.

    ``kinesis`` is a boto3 Kinesis client (``boto3.client("kinesis")``), passed in so the core imports no AWS SDK.
    """

    def __init__(
        self,
        kinesis: Any,
        stream_name: str,
        *,
        max_attempts: int = 8,
        base_delay: float = 0.1,
        max_delay: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        max_buffer_seconds: float = 0.2,
    ) -> None:
        self.kinesis = kinesis
        self.stream_name = stream_name
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.max_buffer_seconds = max_buffer_seconds
        self.stats = PutStats()
        self._buffer: list[_Entry] = []
        self._buffer_bytes = 0
        self._buffer_since = 0.0

    def __enter__(self) -> KinesisFrameProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.flush()

    # ------------------------------------------------------------------------------------------ adding
    def put_frame(
        self,
        rgb: np.ndarray,
        *,
        source_id: str,
        frame_number: int,
        fps: float = 0.0,
        producer_timestamp: float | None = None,
        max_width: int | None = None,
        quality: int = 85,
    ) -> None:
        """Encode an RGB frame (uint8 HxWx3) as a frame record and queue it; sends when a batch is full."""
        jpeg, w, h, reencoded = jpeg_for_record(rgb, source_id, quality=quality, max_width=max_width)
        header = FrameHeader(
            source_id,
            frame_number,
            time.time() if producer_timestamp is None else producer_timestamp,
            fps,
            w,
            h,
            flags=1 if reencoded else 0,
        )
        self.stats.reencoded_frames += int(reencoded)
        self.put_record(header, jpeg)

    def put_record(self, header: FrameHeader, jpeg: bytes) -> None:
        """Queue an already encoded JPEG frame."""
        entry = _Entry(header, encode_frame_record(header, jpeg))
        if len(self._buffer) >= MAX_BATCH_RECORDS or self._buffer_bytes + entry.size > MAX_BATCH_BYTES:
            self.flush()
        if not self._buffer:
            self._buffer_since = time.monotonic()
        self._buffer.append(entry)
        self._buffer_bytes += entry.size
        if time.monotonic() - self._buffer_since >= self.max_buffer_seconds:
            self.flush()

    # ----------------------------------------------------------------------------------------- sending
    def flush(self) -> None:
        """Send everything queued; raises FramesNotSent for frames still failing after ``max_attempts``."""
        pending, self._buffer, self._buffer_bytes = self._buffer, [], 0
        attempt = 0
        errors: list[str] = []
        while pending:
            attempt += 1
            if attempt > 1:
                self.sleep(self._delay(attempt - 1))
            try:
                response = self.kinesis.put_records(
                    StreamName=self.stream_name,
                    Records=[{"Data": e.data, "PartitionKey": e.header.source_id} for e in pending],
                )
            except Exception as exc:  # botocore ClientError; the whole call failed, so every record is retried
                code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
                self.stats.calls += 1
                if code not in THROTTLING_CODES or attempt >= self.max_attempts:
                    if attempt >= self.max_attempts:
                        unsent = [(e.header.source_id, e.header.frame_number, code) for e in pending]
                        raise FramesNotSent(unsent) from exc
                    raise
                self.stats.throttled_calls += 1
                continue
            self.stats.calls += 1
            failed: list[_Entry] = []
            errors = []
            for entry, result in zip(pending, response["Records"], strict=True):
                if result.get("ErrorCode"):
                    failed.append(entry)
                    errors.append(result["ErrorCode"])
                else:
                    self.stats.frames_sent += 1
                    self.stats.bytes_sent += entry.size
                    shard = result.get("ShardId", "?")
                    self.stats.shards[shard] = self.stats.shards.get(shard, 0) + 1
            if failed:
                self.stats.retried_records += len(failed)
                if any(code in THROTTLING_CODES for code in errors):
                    self.stats.throttled_calls += 1
                if attempt >= self.max_attempts:
                    raise FramesNotSent(
                        [(e.header.source_id, e.header.frame_number, c) for e, c in zip(failed, errors, strict=True)]
                    )
            pending = failed

    def _delay(self, retry: int) -> float:
        """Exponential back-off with full jitter (the AWS architecture blog's recommendation for contention)."""
        return self.rng.uniform(0.0, min(self.max_delay, self.base_delay * (2 ** (retry - 1))))


# --------------------------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class SourceFrame:
    rgb: np.ndarray
    frame_number: int  # 0-based among the frames yielded (after sampling)
    source_index: int  # index of the frame in the source
    offset_seconds: float


def open_capture(source: str) -> cv2.VideoCapture:
    """OpenCV capture for a file, a webcam device (an integer, e.g. ``0``) or a stream URL (rtsp://, http://)."""
    cap = cv2.VideoCapture(int(source)) if source.isdigit() else cv2.VideoCapture(source)
    if not cap.isOpened():
        raise ValueError(f"cannot open video source {source!r} (not a video, or the device/URL is unreachable)")
    return cap


def read_frames(source: str, *, fps: float | None = None) -> tuple[float, int | None, Iterator[SourceFrame]]:
    """(output fps, frame count estimate or None, iterator of RGB frames sampled to ``fps``).

    Sampling keeps the source frame nearest each output tick, so 30 → 10 fps keeps every third frame. A file that
    OpenCV opens but yields no frame raises ValueError when iterated (a file that is not a video).
    """
    cap = open_capture(source)
    src_fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    if not 0.0 < src_fps < 1000.0:
        src_fps = 30.0  # devices and some streams report 0
    out_fps = min(fps, src_fps) if fps else src_fps
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    estimate = round(count * out_fps / src_fps) if count > 0 else None

    def frames() -> Iterator[SourceFrame]:
        index = 0
        produced = 0
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                if index * out_fps / src_fps >= produced - 1e-9:
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    yield SourceFrame(rgb, produced, index, index / src_fps)
                    produced += 1
                index += 1
        finally:
            cap.release()
        if produced == 0:
            raise ValueError(f"no frames could be read from {source!r}: not a video, or an empty one")

    return out_fps, estimate, frames()


def put_video(
    producer: KinesisFrameProducer,
    frames: Iterable[SourceFrame],
    *,
    source_id: str,
    fps: float,
    max_width: int | None = None,
    realtime: bool = False,
    on_frame: Callable[[int], None] | None = None,
) -> PutStats:
    """Send ``frames`` as records of ``source_id``; timestamps are the send-side wall clock (ProducerTimestamp).

    ``realtime`` paces sending at ``fps`` (a file replayed as if it were a live camera)."""
    start = time.monotonic()
    with producer:
        for frame in frames:
            if realtime and fps > 0:
                wait = start + frame.frame_number / fps - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            producer.put_frame(
                frame.rgb, source_id=source_id, frame_number=frame.frame_number, fps=fps, max_width=max_width
            )
            if on_frame:
                on_frame(frame.frame_number)
    return producer.stats
