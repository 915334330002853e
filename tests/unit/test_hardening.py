"""Every CLI path ends in a typed error and a documented exit code (0 done, 1 error, 2 usage, 3 partial);
inputs are read with a size limit before decoding; decoded-pixel memory is bounded; a JPEG header that
claims more than its data holds is refused; API parameters are type-checked. No models are loaded here."""

from __future__ import annotations

import errno
import io
import json
import os
import sqlite3
import struct
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesearch.audit import MemoryAuditSink
from facesearch.cli import main
from facesearch.cli.collection_commands import _print, external_id
from facesearch.collections.images import MAX_FILE_BYTES, check_image, image_bytes, read_image_file
from facesearch.errors import (
    ImageTooLargeException,
    InvalidImageFormatException,
    InvalidPaginationTokenException,
    InvalidParameterException,
)
from facesearch.settings import load_settings
from facesearch.store.embedded import EmbeddedStore
from facesearch.wiring import build_service


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACESEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FACESEARCH_MODEL_DIR", str(tmp_path / "no-models"))  # any model load would fail loudly
    return tmp_path / "home"


def png_header(width: int, height: int, color_type: int = 6) -> bytes:
    """A tiny PNG whose header claims width x height (RGBA by default): the size of an attack, not of an image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")
    )


def jpeg(width: int, height: int, **save: object) -> bytes:
    buf = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, "JPEG", **save)
    return buf.getvalue()


def with_claimed_size(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    sof = out.find(b"\xff\xc0")
    out[sof + 5 : sof + 7] = height.to_bytes(2, "big")
    out[sof + 7 : sof + 9] = width.to_bytes(2, "big")
    return bytes(out)


class TestInputsAreReadWithALimit:
    def test_dev_zero_is_refused_after_reading_at_most_the_limit(self):
        with pytest.raises(ImageTooLargeException, match="larger than the limit"):
            read_image_file("/dev/zero")

    def test_detect_dev_zero_does_not_exhaust_memory(self, home, capsys):
        code, _, err = run(capsys, "detect", "/dev/zero")
        assert code == 1 and "ImageTooLargeException" in err

    def test_a_directory_as_the_image_is_a_typed_error(self, home, tmp_path, capsys):
        with pytest.raises(InvalidParameterException, match="is a directory"):
            read_image_file(tmp_path)
        code, _, err = run(capsys, "detect", str(tmp_path))
        assert code == 1 and "InvalidParameterException" in err and "directory" in err
        code, _, err = run(capsys, "search", str(tmp_path), "--collection", "c")
        assert code == 1 and "directory" in err

    def test_a_symlink_loop_as_the_image_is_a_typed_error(self, home, tmp_path, capsys):
        loop = tmp_path / "loop.jpg"
        loop.symlink_to(loop)
        with pytest.raises(InvalidParameterException, match="symbolic link loop"):
            read_image_file(loop)
        code, _, err = run(capsys, "search", str(loop), "--collection", "c")
        assert code == 1 and "symbolic link loop" in err

    def test_one_size_limit_for_a_file_in_every_command(self, home, tmp_path, capsys):
        big = tmp_path / "big.jpg"
        big.write_bytes(b"\xff\xd8" + b"\0" * MAX_FILE_BYTES)
        run(capsys, "collection", "create", "c")
        for argv in (["detect", str(big)], ["search", str(big), "--collection", "c"]):
            code, _, err = run(capsys, *argv)
            assert code == 1 and f"limit of {MAX_FILE_BYTES} bytes" in err, argv
        code, out, err = run(capsys, "index", str(big), "--collection", "c")
        assert code == 1 and f"limit of {MAX_FILE_BYTES} bytes" in out, (out, err)

    def test_a_missing_path_to_index_is_a_typed_error(self, home, tmp_path, capsys):
        code, _, err = run(capsys, "index", str(tmp_path / "nowhere"), "--collection", "c")
        assert code == 1 and "InvalidParameterException" in err and "nowhere" in err

    def test_the_request_limit_is_the_file_limit(self):
        with pytest.raises(ImageTooLargeException):
            image_bytes({"Bytes": b"\0" * (MAX_FILE_BYTES + 1)}, None)


class TestDecodedPixelsAreBounded:
    def test_a_tiny_png_claiming_80_megapixels_of_rgba_is_refused_before_decoding(self):
        bomb = png_header(8900, 8900)  # 79.2 MP, just under the pixel limit: ~1.5 GB to decode as RGBA
        assert len(bomb) < 2000
        with pytest.raises(ImageTooLargeException, match="MB to decode"):
            image_bytes({"Bytes": bomb}, None)

    def test_an_rgba_phone_screenshot_is_accepted(self):
        check_image(png_header(4032, 3024))  # 12 MP RGBA: within the 300 MB budget

    def test_a_large_jpeg_is_accepted_because_it_decodes_reduced(self):
        check_image(jpeg(8000, 6000, quality=5))  # 48 MP, decoded at 1/4 by the JPEG decoder


class TestHeaderDataMismatch:
    def test_a_jpeg_header_claiming_more_than_its_data_is_invalid(self):
        lying = with_claimed_size(jpeg(320, 240), 9000, 8000)
        with pytest.raises(InvalidImageFormatException, match="header and data do not match"):
            image_bytes({"Bytes": lying}, None)

    @pytest.mark.parametrize("progressive", [False, True])
    def test_honest_jpegs_pass_even_uniform_ones(self, progressive):
        for color in ("L", "RGB"):
            buf = io.BytesIO()
            Image.new(color, (4000, 3000), 128).save(buf, "JPEG", progressive=progressive, optimize=True, quality=5)
            check_image(buf.getvalue())
        check_image(jpeg(640, 480, progressive=progressive))


class TestParametersAreTypeChecked:
    @pytest.fixture
    def service(self, tmp_path):
        store = EmbeddedStore(tmp_path / "store")
        svc = build_service(load_settings(), engine=object(), store=store, audit=MemoryAuditSink())
        svc.create_collection(CollectionId="c")
        yield svc
        store.close()

    def test_a_non_string_next_token_is_an_invalid_token_not_a_crash(self, service):
        for token in (5, {"a": 1}, ["x"]):
            with pytest.raises(InvalidPaginationTokenException, match="must be a string"):
                service.list_faces(CollectionId="c", NextToken=token)
            with pytest.raises(InvalidPaginationTokenException):
                service.list_collections(NextToken=token)

    def test_all_faces_false_as_a_string_is_refused(self, service):
        with pytest.raises(InvalidParameterException, match="AllFaces must be a boolean"):
            service.search_faces_by_image(CollectionId="c", Image={"Bytes": b"x"}, AllFaces="false")

    def test_an_unknown_parameter_is_refused_not_ignored(self, service):
        """A misspelt threshold must not silently fall back to the default."""
        with pytest.raises(InvalidParameterException, match="does not take FaceMatchTreshold"):
            service.search_faces(CollectionId="c", FaceId=str(uuid.uuid4()), FaceMatchTreshold=99)
        assert service.audit.records[-1].status == "refused"
        with pytest.raises(InvalidParameterException, match="does not take Limit"):
            service.list_faces(CollectionId="c", Limit=5)

    def test_max_faces_zero_is_a_usage_error_not_unlimited(self, home, capsys, tmp_path):
        for argv in (
            ["index", str(tmp_path), "--collection", "c", "--max-faces", "0"],
            ["search", str(tmp_path), "--collection", "c", "--max-faces", "0"],
            ["detect", str(tmp_path), "--max-faces", "0"],
        ):
            with pytest.raises(SystemExit) as exit_:
                main(argv)
            assert exit_.value.code == 2, argv
        assert "must be at least 1" in capsys.readouterr().err


class TestJsonOutput:
    def test_json_output_is_always_valid(self, capsys):
        _print({"Similarity": float("inf"), "Sharpness": float("nan"), "Ok": 1.5, "n": np.float32("inf")})
        out = capsys.readouterr().out
        assert "Infinity" not in out and "NaN" not in out
        assert json.loads(out) == {"Similarity": None, "Sharpness": None, "Ok": 1.5, "n": None}


class TestExternalImageIds:
    def test_cleaned_file_names_never_merge_different_files(self):
        ids = {external_id(Path(f"/photos/{name}.jpg"), "filename") for name in ("a b", "a_b", "a+b", "a?b")}
        assert len(ids) == 4
        assert external_id(Path("/photos/a_b.jpg"), "filename") == "a_b"  # clean names are kept as they are

    def test_long_names_with_one_prefix_stay_apart(self):
        a, b = ("x" * 300 + "1", "x" * 300 + "2")
        ida, idb = external_id(Path(f"/{a}.jpg"), "filename"), external_id(Path(f"/{b}.jpg"), "filename")
        assert ida != idb and len(ida) <= 255 and len(idb) <= 255

    def test_folder_names_too(self):
        assert external_id(Path("/p/jane doe/1.jpg"), "dirname") != external_id(Path("/p/jane_doe/1.jpg"), "dirname")


class TestBackendAndDiskFailures:
    def test_unreachable_opensearch_is_a_typed_error(self, home, capsys):
        import socket

        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        code, _, err = run(
            capsys, "faces", "list", "--collection", "c", "--backend", "opensearch", "--opensearch-url", url
        )
        assert code == 1 and "ServiceUnavailableException: OpenSearch is unreachable" in err
        assert "Traceback" not in err

    @pytest.mark.parametrize(
        "failure",
        [OSError(errno.ENOSPC, "No space left on device"), sqlite3.OperationalError("database or disk is full")],
    )
    def test_a_full_disk_under_the_store_is_a_typed_error(self, home, capsys, monkeypatch, failure):
        def full(self, record):
            raise failure

        monkeypatch.setattr(EmbeddedStore, "create_collection", full)
        code, _, err = run(capsys, "collection", "create", "c")
        assert code == 1 and "ServiceUnavailableException" in err
        assert "no space left" in err or "disk is full" in err
        assert "Traceback" not in err

    def test_a_full_disk_under_the_audit_log_changes_nothing(self, home, capsys, monkeypatch):
        from facesearch.audit import JsonlAuditSink

        def full(self, record):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(JsonlAuditSink, "write", full)
        code, _, err = run(capsys, "collection", "create", "c")
        assert code == 1 and "audit record of CreateCollection could not be written" in err
        monkeypatch.undo()
        os.environ["FACESEARCH_HOME"] = str(home)
        code, out, _ = run(capsys, "collection", "list")
        assert code == 0 and out == ""  # nothing was created without its record
