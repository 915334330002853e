"""Resolve Rekognition's ``Image`` parameter ({"Bytes": ...} or {"S3Object": {...}}) or a local file to raw
bytes, and refuse, before any pixel is decoded, what would cost too much or cannot be what it claims.

One size limit per input kind, the same in every command and API call:
- ``Image.Bytes`` in a request, and a local file (the CLI sends files as ``Image.Bytes``): 5 MB (Rekognition);
- an S3 object: 15 MB (Rekognition).
Files and S3 bodies are read with the limit (never more than limit + 1 bytes), so ``/dev/zero`` or a lying
ContentLength cannot exhaust memory.

Decoded-pixel memory per image is bounded (``MAX_DECODE_BYTES``, 300 MB), by format and mode: JPEGs decode
reduced by the decoder itself (``DECODE_MAX_SIDE``), other formats at full size, where an RGBA or 16-bit PNG
costs 3-4 times as much per pixel as an RGB one (measured peaks: RGB ~7, alpha ~20, 16-bit ~27 bytes/pixel).
"""

from __future__ import annotations

import base64
import errno
import io
import math
import os
import stat
import warnings
from pathlib import Path
from typing import Any

from facesearch.engine.decode import DECODE_MAX_SIDE, MAX_IMAGE_BYTES
from facesearch.errors import (
    ImageTooLargeException,
    InvalidImageFormatException,
    InvalidParameterException,
    InvalidS3ObjectException,
)

# Rekognition: 5 MB as raw bytes in the request, 15 MB when read from S3.
MAX_INLINE_BYTES = 5 * 1024 * 1024
MAX_S3_BYTES = MAX_IMAGE_BYTES
MAX_FILE_BYTES = MAX_INLINE_BYTES  # a local file becomes Image.Bytes
MAX_DECODE_BYTES = 300 * 1024 * 1024
# Peak bytes per decoded pixel while decoding and converting to RGB (decode.py's _to_rgb, EXIF transpose),
# measured with ru_maxrss on 12 MP images (RGB 6.3, L/P 10.3, RGBA/LA 19.3, I;16 26.1) and rounded up: a 12 MP
# RGBA PNG (a phone screenshot) fits in the budget, an 80 MP one does not.
_BYTES_PER_PIXEL = {"1": 12, "L": 12, "P": 12, "RGB": 8, "YCbCr": 8, "CMYK": 10, "LAB": 10, "HSV": 10}
_BYTES_PER_PIXEL_ALPHA = 24  # RGBA, LA, PA, P with transparency: composited over white, then RGB
_BYTES_PER_PIXEL_DEFAULT = 32  # I;16, I, F: scaled through float64


def image_bytes(image: Any, s3_client: Any | None, name: str = "Image") -> tuple[bytes, str]:
    """(bytes, source) where source is an s3:// URI or "bytes"; raises Rekognition's errors."""
    if not isinstance(image, dict) or ("Bytes" in image) == ("S3Object" in image):
        raise InvalidParameterException(f"{name} must have exactly one of Bytes or S3Object")
    if "Bytes" in image:
        data = image["Bytes"]
        if isinstance(data, str):  # JSON callers send base64, as the Rekognition wire format does
            try:
                data = base64.b64decode(data, validate=True)
            except ValueError as exc:
                raise InvalidParameterException(f"{name}.Bytes is not valid base64") from exc
        if not isinstance(data, bytes | bytearray):
            raise InvalidParameterException(f"{name}.Bytes must be bytes")
        if len(data) > MAX_INLINE_BYTES:
            raise ImageTooLargeException(f"{name}.Bytes is {len(data)} bytes; the limit is {MAX_INLINE_BYTES}")
        check_image(bytes(data))
        return bytes(data), "bytes"
    obj = image["S3Object"]
    if not isinstance(obj, dict) or not obj.get("Bucket") or not obj.get("Name"):
        raise InvalidParameterException(f"{name}.S3Object needs Bucket and Name")
    if s3_client is None:
        raise InvalidS3ObjectException("this service has no S3 client configured; send Image.Bytes instead")
    kwargs = {"Bucket": obj["Bucket"], "Key": obj["Name"]}
    if obj.get("Version"):
        kwargs["VersionId"] = obj["Version"]
    uri = f"s3://{obj['Bucket']}/{obj['Name']}"
    try:
        head = s3_client.head_object(**kwargs)
        if head.get("ContentLength", 0) > MAX_S3_BYTES:
            raise ImageTooLargeException(f"{uri} is {head['ContentLength']} bytes; the limit is {MAX_S3_BYTES}")
        body = s3_client.get_object(**kwargs)["Body"].read(MAX_S3_BYTES + 1)  # the object may have grown
        if len(body) > MAX_S3_BYTES:
            raise ImageTooLargeException(f"{uri} is over the limit of {MAX_S3_BYTES} bytes")
    except ImageTooLargeException:
        raise
    except Exception as exc:  # botocore ClientError and friends: report, never leak credentials
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise InvalidS3ObjectException(f"unable to get object {uri}: {code}") from exc
    check_image(body)
    return body, uri + (f"?versionId={obj['Version']}" if obj.get("Version") else "")


def read_image_file(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """A local image file's bytes, read with the size limit; a directory, a symlink loop, a missing or
    unreadable file is ``InvalidParameterException`` naming the path (never a traceback)."""
    path = Path(path)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise InvalidParameterException(f"{path} is a directory, not an image file")
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise InvalidParameterException(f"{path}: no such file") from None
    except PermissionError:
        raise InvalidParameterException(f"{path}: permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidParameterException(f"{path}: symbolic link loop") from None
        if exc.errno == errno.EISDIR:
            raise InvalidParameterException(f"{path} is a directory, not an image file") from None
        raise InvalidParameterException(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise ImageTooLargeException(f"{path} is larger than the limit of {max_bytes} bytes for an image file")
    return data


def check_image(data: bytes, *, max_decode_bytes: int = MAX_DECODE_BYTES, max_side: int = DECODE_MAX_SIDE) -> None:
    """Refuse, from the header alone, an image whose decoding would cost more than ``max_decode_bytes`` or
    whose data cannot fill the size its header claims. Bytes that are not an image pass: decoding reports them.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if image.format == "JPEG" and max(width, height) > max_side:
                shrink = max_side / max(width, height)
                image.draft("RGB", (int(width * shrink) + 1, int(height * shrink) + 1))  # as decode.py does
            decoded = image.size
            mode = image.mode
            alpha = "transparency" in image.info
            fmt = image.format
    except Exception:
        return  # not an image we can read: decode_image raises the typed error for it
    if alpha or mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        per_pixel = _BYTES_PER_PIXEL_ALPHA
    else:
        per_pixel = _BYTES_PER_PIXEL.get(mode, _BYTES_PER_PIXEL_DEFAULT)
    cost = decoded[0] * decoded[1] * per_pixel
    if cost > max_decode_bytes:
        raise ImageTooLargeException(
            f"a {width}x{height} {fmt} image in mode {mode} needs about {cost // 2**20} MB to decode; "
            f"the limit is {max_decode_bytes // 2**20} MB (JPEGs decode reduced, so a JPEG of this size fits)"
        )
    if fmt == "JPEG":
        _check_jpeg_data(data, width, height)


def _check_jpeg_data(data: bytes, width: int, height: int) -> None:
    """A Huffman-coded JPEG spends at least one bit per 8x8 block on its DC coefficient; a header that claims
    more blocks than the entropy-coded data has bits is a header/data mismatch, which the decoder would
    otherwise fill with gray and report as an image with no faces."""
    layout = _jpeg_layout(data)
    if layout is None:
        return
    blocks, scan_bytes = layout
    if scan_bytes * 8 < blocks:
        raise InvalidImageFormatException(
            f"the JPEG header claims {width}x{height} pixels ({blocks} blocks), but its image data is only "
            f"{scan_bytes} bytes: header and data do not match"
        )


def _jpeg_layout(data: bytes) -> tuple[int, int] | None:
    """(8x8 blocks the frame header needs, entropy-coded bytes in all scans), or None when the file is not a
    Huffman-coded baseline/progressive JPEG (arithmetic coding can spend less than a bit per block)."""
    if data[:2] != b"\xff\xd8":
        return None
    pos, blocks, scan_bytes, n = 2, None, 0, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker == 0xD9:
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        segment = data[pos + 4 : pos + 2 + length]
        if marker in (0xC0, 0xC1, 0xC2):
            if len(segment) < 6:
                return None
            height, width, count = int.from_bytes(segment[1:3], "big"), int.from_bytes(segment[3:5], "big"), segment[5]
            if height == 0 or len(segment) < 6 + 3 * count:
                return None  # height defined later (DNL): no claim to check
            factors = [(segment[7 + 3 * i] >> 4, segment[7 + 3 * i] & 15) for i in range(count)]
            hmax, vmax = max(f[0] for f in factors) or 1, max(f[1] for f in factors) or 1
            blocks = sum(
                math.ceil(math.ceil(width * h / hmax) / 8) * math.ceil(math.ceil(height * v / vmax) / 8)
                for h, v in factors
            )
        elif 0xC3 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return None  # lossless, hierarchical or arithmetic-coded
        pos += 2 + length
        if marker == 0xDA:  # entropy-coded data follows, up to the next marker other than RSTn
            start = pos
            while True:
                ff = data.find(b"\xff", pos)
                if ff < 0 or ff + 1 >= n:
                    pos = n
                    break
                nxt = data[ff + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    pos = ff + 2 if nxt != 0xFF else ff + 1
                    continue
                pos = ff
                break
            scan_bytes += pos - start
    return (blocks, scan_bytes) if blocks else None
