"""The frame record format: what a producer writes, a consumer reads back exactly; anything else is refused."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from facesearch.video.frames import (
    MAX_RECORD_BYTES,
    FrameHeader,
    FrameRecordError,
    decode_frame_record,
    encode_frame_record,
    encode_jpeg,
    jpeg_for_record,
)


def _frame(w: int = 64, h: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_round_trip_keeps_every_header_field_and_the_jpeg_bytes():
    jpeg = encode_jpeg(_frame())
    header = FrameHeader("cam-ø1", 12345678901, 1_700_000_000.123, 29.97, 64, 48, flags=1)
    record = decode_frame_record(encode_frame_record(header, jpeg))
    assert record.header == header
    assert record.jpeg == jpeg
    assert record.header.reencoded
    assert record.header.offset_seconds == pytest.approx(12345678901 / 29.97)


def test_header_is_33_bytes_plus_the_source_id_and_big_endian():
    jpeg = encode_jpeg(_frame())
    data = encode_frame_record(FrameHeader("cam1", 7, 1.5, 10, 64, 48), jpeg)
    assert data[:4] == b"FSVF"
    assert struct.unpack(">H", data[6:8])[0] == 33 + 4
    assert struct.unpack(">Q", data[8:16])[0] == 7
    assert struct.unpack(">q", data[16:24])[0] == 1500
    assert struct.unpack(">I", data[24:28])[0] == 10_000
    assert data[37:] == jpeg


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter than"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 64, "no frame header"),
        (b"FSVF\x02" + b"\0" * 60, "version 2 is not supported"),
    ],
)
def test_records_without_a_valid_header_are_refused(data: bytes, message: str):
    with pytest.raises(FrameRecordError, match=message):
        decode_frame_record(data)


def test_truncated_header_and_non_jpeg_payload_are_refused():
    good = encode_frame_record(FrameHeader("camera-1", 0, 0.0, 30, 64, 48), encode_jpeg(_frame()))
    with pytest.raises(FrameRecordError, match="truncated"):
        decode_frame_record(good[:36])
    with pytest.raises(FrameRecordError, match="not a JPEG"):
        decode_frame_record(good[:41] + b"PNG....")


def test_a_corrupt_jpeg_body_still_parses_as_a_record_the_decoder_then_rejects():
    """The header layer checks structure only; pixel decoding (engine.decode) reports a corrupt body."""
    good = encode_frame_record(FrameHeader("c", 0, 0.0, 30, 64, 48), encode_jpeg(_frame()))
    record = decode_frame_record(good[:60])
    assert record.header.frame_number == 0


def test_oversized_records_are_refused_before_sending():
    fake_jpeg = b"\xff\xd8" + b"\0" * MAX_RECORD_BYTES
    with pytest.raises(FrameRecordError, match="exceeds"):
        encode_frame_record(FrameHeader("c", 0, 0.0, 30, 64, 48), fake_jpeg)
    with pytest.raises(FrameRecordError, match="larger than any"):
        decode_frame_record(b"FSVF" + b"\0" * (2 * MAX_RECORD_BYTES))


@pytest.mark.parametrize("source_id", ["", "x" * 129])
def test_source_id_must_be_1_to_128_bytes(source_id: str):
    with pytest.raises(FrameRecordError, match="source id"):
        encode_frame_record(FrameHeader(source_id, 0, 0.0, 30, 64, 48), encode_jpeg(_frame()))


def test_frames_too_big_for_a_record_are_reencoded_then_downscaled_until_they_fit():
    noise = _frame(1024, 1024, seed=3)  # random noise: ~3 MB as a JPEG at quality 85
    jpeg, w, h, reencoded = jpeg_for_record(noise, "cam", max_record_bytes=300_000)
    assert reencoded and len(jpeg) + 33 + 3 + 3 <= 300_000
    assert (w, h) != (1024, 1024)
    _, w2, h2, again = jpeg_for_record(_frame(64, 48), "cam")
    assert not again and (w2, h2) == (64, 48)


def test_max_width_downscales_keeping_the_aspect_ratio():
    _, w, h, reencoded = jpeg_for_record(_frame(1280, 720), "cam", max_width=640)
    assert (w, h) == (640, 360) and not reencoded


def test_a_record_becomes_a_decoded_frame_and_a_corrupt_jpeg_is_a_typed_error():
    from facesearch.errors import InvalidImageFormatException
    from facesearch.video.matcher import frame_from_record

    rgb = _frame(64, 48)
    jpeg = encode_jpeg(rgb)
    header = FrameHeader("cam1", 9, 1000.25, 10, 64, 48)
    frame = frame_from_record(encode_frame_record(header, jpeg))
    assert (frame.source_id, frame.frame_number, frame.fps, frame.producer_timestamp) == ("cam1", 9, 10, 1000.25)
    assert frame.rgb.shape == (48, 64, 3) and frame.encoded == jpeg and frame.offset_seconds == 0.9
    with pytest.raises(InvalidImageFormatException):
        frame_from_record(encode_frame_record(header, jpeg[:40]))
    with pytest.raises(FrameRecordError, match="header says 32x48"):
        frame_from_record(encode_frame_record(FrameHeader("cam1", 9, 0.0, 10, 32, 48), jpeg))
