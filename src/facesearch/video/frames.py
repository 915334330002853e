"""One video frame as one Kinesis record: a small binary header, then the JPEG bytes (no base64).

Layout (big-endian, docs/VIDEO.md has the table and the shard arithmetic)::

    0   4  magic b"FSVF"
    4   1  format version (1)
    5   1  flags (bit 0: the producer downscaled or re-encoded the frame to fit the record limit)
    6   2  header length H in bytes (the JPEG starts at offset H; lets later versions append fields)
    8   8  frame number, 0-based, per source (u64)
    16  8  producer timestamp, milliseconds since the Unix epoch (i64)
    24  4  frame rate in milli-frames per second (u32; 0 = unknown)
    28  2  width  (u16, pixels of the JPEG)
    30  2  height (u16)
    32  1  source id length n (1..128)
    33  n  source id (UTF-8): the camera or video id, also the record's partition key (order per camera)
    H   …  JPEG bytes

Kinesis caps a record at 1 MiB counting the data *and* the partition key; :func:`jpeg_for_record` re-encodes at
lower quality, then downscales, until the record fits.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np

MAGIC = b"FSVF"
VERSION = 1
FLAG_REENCODED = 0x01
MAX_RECORD_BYTES = 1024 * 1024  # Kinesis: data blob + partition key
MAX_SOURCE_ID_BYTES = 128
_FIXED = struct.Struct(">4sBBHQqIHHB")  # up to and including the source id length
MIN_HEADER_BYTES = _FIXED.size  # 33
_JPEG_SOI = b"\xff\xd8"


class FrameRecordError(ValueError):
    """A record that is not a frame record of a version we read (no header, truncated, not a JPEG, too big)."""


@dataclass(frozen=True)
class FrameHeader:
    source_id: str
    frame_number: int
    producer_timestamp: float  # seconds since the epoch (stored with millisecond precision)
    fps: float
    width: int
    height: int
    flags: int = 0

    @property
    def reencoded(self) -> bool:
        return bool(self.flags & FLAG_REENCODED)

    @property
    def offset_seconds(self) -> float:
        """Frame offset from the start of the source (Rekognition's FrameOffsetInSeconds); 0 when fps is unknown."""
        return self.frame_number / self.fps if self.fps > 0 else 0.0


@dataclass(frozen=True)
class FrameRecord:
    header: FrameHeader
    jpeg: bytes


def _source_bytes(source_id: str) -> bytes:
    raw = source_id.encode("utf-8")
    if not 1 <= len(raw) <= MAX_SOURCE_ID_BYTES:
        raise FrameRecordError(f"source id must be 1..{MAX_SOURCE_ID_BYTES} UTF-8 bytes, got {len(raw)}")
    return raw


def header_size(source_id: str) -> int:
    return MIN_HEADER_BYTES + len(_source_bytes(source_id))


def encode_frame_record(header: FrameHeader, jpeg: bytes) -> bytes:
    """Header + JPEG; refuses a record that Kinesis would refuse (with its partition key, the source id)."""
    sid = _source_bytes(header.source_id)
    if not jpeg.startswith(_JPEG_SOI):
        raise FrameRecordError("frame payload is not a JPEG (no SOI marker)")
    if header.frame_number < 0:
        raise FrameRecordError(f"frame number must be >= 0, got {header.frame_number}")
    if not (0 < header.width < 65536 and 0 < header.height < 65536):
        raise FrameRecordError(f"frame size {header.width}x{header.height} out of range")
    fixed = _FIXED.pack(
        MAGIC,
        VERSION,
        header.flags & 0xFF,
        MIN_HEADER_BYTES + len(sid),
        header.frame_number,
        round(header.producer_timestamp * 1000.0),
        max(0, round(header.fps * 1000.0)),
        header.width,
        header.height,
        len(sid),
    )
    data = fixed + sid + jpeg
    if len(data) + len(sid) > MAX_RECORD_BYTES:
        raise FrameRecordError(
            f"frame record of {len(data)} bytes + partition key exceeds Kinesis's {MAX_RECORD_BYTES}-byte limit"
        )
    return data


def decode_frame_record(data: bytes) -> FrameRecord:
    """Parse a record; every way it can be malformed is a FrameRecordError that says which."""
    if len(data) + MIN_HEADER_BYTES > 2 * MAX_RECORD_BYTES:
        raise FrameRecordError(f"record of {len(data)} bytes is larger than any frame record")
    if len(data) < MIN_HEADER_BYTES:
        raise FrameRecordError(f"record of {len(data)} bytes is shorter than the {MIN_HEADER_BYTES}-byte header")
    magic, version, flags, hlen, number, ts_ms, mfps, width, height, n = _FIXED.unpack_from(data)
    if magic != MAGIC:
        raise FrameRecordError("record has no frame header (magic bytes missing)")
    if version != VERSION:
        raise FrameRecordError(f"frame record version {version} is not supported (this reader knows {VERSION})")
    if not 1 <= n <= MAX_SOURCE_ID_BYTES or hlen < MIN_HEADER_BYTES + n or hlen > len(data):
        raise FrameRecordError("frame header is truncated or its lengths are inconsistent")
    try:
        source_id = bytes(data[MIN_HEADER_BYTES : MIN_HEADER_BYTES + n]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FrameRecordError("frame source id is not UTF-8") from exc
    jpeg = bytes(data[hlen:])
    if not jpeg.startswith(_JPEG_SOI):
        raise FrameRecordError("frame payload is not a JPEG (no SOI marker)")
    header = FrameHeader(source_id, number, ts_ms / 1000.0, mfps / 1000.0, width, height, flags)
    return FrameRecord(header, jpeg)


def encode_jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise FrameRecordError("JPEG encoding failed")
    return buf.tobytes()


def jpeg_for_record(
    rgb: np.ndarray,
    source_id: str,
    *,
    quality: int = 85,
    max_width: int | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> tuple[bytes, int, int, bool]:
    """JPEG of ``rgb`` (RGB uint8) that fits one record: (jpeg, width, height, reencoded).

    Frames wider than ``max_width`` are downscaled first (a producer option). Then, if the record would not fit,
    the quality is lowered to 70 and 50, and after that the frame is halved until it fits; ``reencoded`` says so.
    """
    budget = max_record_bytes - header_size(source_id) - len(_source_bytes(source_id))
    h, w = rgb.shape[:2]
    changed = False
    if max_width and w > max_width:
        h, w = max(1, round(h * max_width / w)), max_width
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    steps = [q for q in (quality, 70, 50) if q <= quality]
    while True:
        for q in steps:
            jpeg = encode_jpeg(rgb, q)
            if len(jpeg) <= budget:
                return jpeg, w, h, changed
            changed = True
        if min(h, w) < 32:
            raise FrameRecordError(f"cannot fit a frame into {max_record_bytes} bytes")
        h, w = max(1, h // 2), max(1, w // 2)
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        steps = [50]
