"""The dlib serialization primitives, specified on bytes we write by hand."""

from __future__ import annotations

import io
import math
import struct
from collections import Counter

import numpy as np
import pytest

from facesearch.models.dlib_convert import (
    ARCHITECTURE,
    Conv,
    DlibFormatError,
    read_alias_tensor,
    read_bool,
    read_float,
    read_int,
    read_layer_details,
    read_string,
    read_tensor,
)


def stream(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


def floats(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


# --- integers: control byte (bit 7 = sign, low nibble = byte count), then little-endian magnitude ---------


def test_int_one_byte():
    assert read_int(stream(b"\x01\x05")) == 5


def test_int_bytes_are_little_endian():
    assert read_int(stream(b"\x02\x80\x12")) == 0x1280


def test_int_sign_is_bit_7_of_the_control_byte():
    assert read_int(stream(b"\x81\x1c")) == -28
    assert read_int(stream(b"\x82\x80\x12")) == -0x1280


def test_int_zero_is_one_zero_byte():
    assert read_int(stream(b"\x01\x00")) == 0


def test_int_widest_is_eight_bytes():
    assert read_int(stream(b"\x08" + b"\xff" * 8)) == 2**64 - 1


def test_int_consumes_exactly_its_bytes():
    s = stream(b"\x02\x01\x02\x01\x07")
    assert read_int(s) == 0x0201
    assert read_int(s) == 7


def test_int_wider_than_eight_bytes_is_rejected():
    with pytest.raises(DlibFormatError, match="wider than 64 bits"):
        read_int(stream(b"\x09" + b"\x00" * 9))


def test_int_control_byte_with_reserved_bits_is_rejected():
    # dlib never sets bits 4-6; seeing them means the parser lost its place in the stream.
    with pytest.raises(DlibFormatError, match="reserved bits"):
        read_int(stream(b"\x31\x00"))


def test_int_truncated():
    with pytest.raises(DlibFormatError, match="truncated"):
        read_int(stream(b"\x04\x01\x02"))


# --- floats: int64 mantissa and int16 exponent, value = mantissa * 2**exponent ---------------------------


def test_float_is_mantissa_times_two_to_the_exponent():
    assert read_float(stream(b"\x01\x10\x81\x04")) == 1.0  # 16 * 2**-4
    assert read_float(stream(b"\x81\x03\x81\x01")) == -1.5  # -3 * 2**-1
    assert read_float(stream(b"\x01\x03\x01\x02")) == 12.0  # 3 * 2**2


def test_float_from_the_real_file_header():
    # loss_metric's margin in dlib_face_recognition_resnet_model_v1.dat: 0xa3d70a * 2**-28
    assert read_float(stream(b"\x03\x0a\xd7\xa3\x81\x1c")) == pytest.approx(0.04, rel=1e-7)


def test_float_zero_may_carry_any_exponent():
    assert read_float(stream(b"\x01\x00\x01\x0b")) == 0.0  # as written in the real file


def test_float_special_exponents():
    assert read_float(stream(b"\x01\x00\x02\x00\x7d")) == math.inf  # exponent 32000
    assert read_float(stream(b"\x01\x00\x02\x01\x7d")) == -math.inf  # exponent 32001
    assert math.isnan(read_float(stream(b"\x01\x00\x02\x02\x7d")))  # exponent 32002


def test_float_exponent_outside_int16_is_rejected():
    with pytest.raises(DlibFormatError, match="int16"):
        read_float(stream(b"\x01\x01\x03\x00\x00\x01"))  # exponent 65536


# --- strings and bools --------------------------------------------------------------------------------------


def test_string_is_length_then_bytes():
    s = stream(b"\x01\x05con_4\x01\x07affine_")
    assert read_string(s) == "con_4"
    assert read_string(s) == "affine_"


def test_bool_is_one_ascii_digit():
    s = stream(b"10")
    assert read_bool(s) is True
    assert read_bool(s) is False


def test_bool_other_bytes_are_rejected():
    with pytest.raises(DlibFormatError, match="bool"):
        read_bool(stream(b"\x01"))


# --- tensors: version 2, num_samples, k, nr, nc, raw little-endian float32 ----------------------------------

TENSOR_2x1x1x3 = b"\x01\x02" + b"\x01\x02\x01\x01\x01\x01\x01\x03"


def test_tensor_header_then_float32_data():
    t = read_tensor(stream(TENSOR_2x1x1x3 + floats(1, 2, 3, 4, 5, -6.5)))
    assert t.dtype == np.float32
    assert t.shape == (2, 1, 1, 3)
    assert t.ravel().tolist() == [1, 2, 3, 4, 5, -6.5]


def test_tensor_empty():
    # Every layer's gradient/output buffers are written like this in a trained model file.
    t = read_tensor(stream(b"\x01\x02" + b"\x01\x00" * 4))
    assert t.shape == (0, 0, 0, 0)


def test_tensor_consumes_exactly_its_data():
    s = stream(TENSOR_2x1x1x3 + floats(*range(6)) + b"\x01\x07")
    read_tensor(s)
    assert read_int(s) == 7


def test_tensor_other_versions_are_rejected():
    with pytest.raises(DlibFormatError, match="tensor version 1"):
        read_tensor(stream(b"\x01\x01" + b"\x01\x00" * 4))


def test_tensor_truncated_data():
    with pytest.raises(DlibFormatError, match="truncated"):
        read_tensor(stream(TENSOR_2x1x1x3 + floats(1, 2, 3)))


def test_alias_tensor_is_version_1_and_dims_without_data():
    assert read_alias_tensor(stream(b"\x01\x01\x01\x20\x01\x03\x01\x07\x01\x07")) == (32, 3, 7, 7)


# --- layer details ------------------------------------------------------------------------------------------


def test_con_layer_splits_params_into_oihw_weights_then_biases():
    one = b"\x01\x10\x81\x04"  # 1.0
    data = (
        b"\x01\x05con_4"
        + b"\x01\x02\x01\x04\x01\x01\x01\x01\x01\x01"  # params tensor (4,1,1,1): 2 weights + 2 biases
        + floats(0.5, -0.5, 10, 20)
        + b"\x01\x02\x01\x01\x01\x01"  # num_filters 2, nr 1, nc 1
        + b"\x01\x02\x01\x02\x01\x00\x01\x00"  # stride 2x2, padding 0x0
        + b"\x01\x01\x01\x02\x01\x01\x01\x01\x01\x01"  # filters alias (2,1,1,1)
        + b"\x01\x01\x01\x01\x01\x02\x01\x01\x01\x01"  # biases alias (1,2,1,1)
        + one * 4  # learning-rate / weight-decay multipliers
    )
    conv = read_layer_details(stream(data))
    assert isinstance(conv, Conv)
    assert conv.weights.shape == (2, 1, 1, 1)
    assert conv.weights.ravel().tolist() == [0.5, -0.5]
    assert conv.bias.tolist() == [10, 20]
    assert (conv.stride, conv.padding) == ((2, 2), (0, 0))


def test_unknown_layer_is_rejected_with_its_name():
    with pytest.raises(DlibFormatError, match="'bn_con'"):
        read_layer_details(stream(b"\x01\x06bn_con"))


def test_architecture_has_the_layer_counts_of_the_published_model():
    kinds = Counter(str(token[0]) for token in ARCHITECTURE)
    assert kinds["con"] == kinds["affine"] == kinds["relu"] == 29
    assert kinds["add_prev"] == 14
    assert kinds["avg_pool"] == 5
    assert kinds["max_pool"] == 1
    assert kinds["tag"] + kinds["skip"] == 22
    assert kinds["fc"] == 1
