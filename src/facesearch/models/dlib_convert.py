"""Convert dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) to ONNX.

Why our own converter: the weights are only published in dlib's private serialization format, and we want to
run them on onnxruntime without linking dlib (and without trusting a third-party ``.onnx`` from a model hub).

The format, as written by dlib's ``serialize()`` functions:

* integers: one control byte (bit 7 = sign, low nibble = byte count, other bits zero) then that many
  little-endian magnitude bytes;
* scalar floats: an int64 mantissa and an int16 exponent, both as integers above (value = m·2^e; exponent
  32000/32001/32002 mean +inf/−inf/nan);
* strings: a length integer then the bytes; bools: one ASCII byte, ``'0'`` or ``'1'``;
* tensors: version 2, then num_samples, k, nr, nc, then raw little-endian float32 data;
* the network is a nest of ``add_layer``/``add_tag_layer``/``add_skip_layer`` objects, and each one writes
  its version *before* recursing into its subnetwork and its layer details *after*. So the file holds every
  version number (outer to inner), then the input layer, then the layer details from input to output.

Tag and skip layers write only a version (1), not their id, so the residual wiring cannot be read from the
file: it is rebuilt from the network definition in dlib's ``dnn_face_recognition_ex.cpp`` (``ARCHITECTURE``
below) and every layer in the file is checked against that definition before anything is emitted.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17; pinned so the bytes don't depend on the onnx release
CHIP_SIZE = 150
DESCRIPTOR_DIM = 128

_FLOAT_INF, _FLOAT_NINF, _FLOAT_NAN = 32000, 32001, 32002


class DlibFormatError(ValueError):
    """The bytes are not the dlib serialization we understand (truncated, corrupt, or another network)."""


# ---------------------------------------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------------------------------------


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise DlibFormatError(f"truncated input: wanted {n} bytes, got {len(data)}")
    return data


def read_int(stream: BinaryIO) -> int:
    """An integer: control byte (bit 7 = negative, low 4 bits = byte count), then little-endian bytes."""
    control = _read_exact(stream, 1)[0]
    if control & 0x70:
        raise DlibFormatError(f"bad integer control byte 0x{control:02x} (reserved bits set)")
    size = control & 0x0F
    if size > 8:
        raise DlibFormatError(f"integer of {size} bytes is wider than 64 bits")
    value = int.from_bytes(_read_exact(stream, size), "little")
    return -value if control & 0x80 else value


def read_float(stream: BinaryIO) -> float:
    """A scalar float/double: mantissa and exponent integers, value = mantissa·2^exponent."""
    mantissa = read_int(stream)
    exponent = read_int(stream)
    if exponent == _FLOAT_INF:
        return math.inf
    if exponent == _FLOAT_NINF:
        return -math.inf
    if exponent == _FLOAT_NAN:
        return math.nan
    if not -(2**15) <= exponent < 2**15:
        raise DlibFormatError(f"float exponent {exponent} does not fit in int16")
    return math.ldexp(mantissa, exponent)


def read_bool(stream: BinaryIO) -> bool:
    """A bool: a single ASCII '0' or '1'."""
    byte = _read_exact(stream, 1)
    if byte not in (b"0", b"1"):
        raise DlibFormatError(f"bad bool byte {byte!r}")
    return byte == b"1"


def read_string(stream: BinaryIO) -> str:
    """A std::string: length integer, then the bytes."""
    length = read_int(stream)
    if length < 0:
        raise DlibFormatError(f"negative string length {length}")
    return _read_exact(stream, length).decode("ascii")


def _read_dims(stream: BinaryIO, what: str) -> tuple[int, int, int, int]:
    n, k, nr, nc = (read_int(stream) for _ in range(4))
    if min(n, k, nr, nc) < 0:
        raise DlibFormatError(f"negative {what} dimension in {(n, k, nr, nc)}")
    return n, k, nr, nc


def read_tensor(stream: BinaryIO) -> np.ndarray:
    """A resizable_tensor: version 2, dims (num_samples, k, nr, nc), then little-endian float32 data."""
    version = read_int(stream)
    if version != 2:
        raise DlibFormatError(f"unsupported tensor version {version} (expected 2)")
    dims = _read_dims(stream, "tensor")
    count = math.prod(dims)
    data = np.frombuffer(_read_exact(stream, 4 * count), dtype="<f4")
    return data.astype(np.float32).reshape(dims)


def read_alias_tensor(stream: BinaryIO) -> tuple[int, int, int, int]:
    """An alias_tensor (a view into a layer's params): version 1 and its dims, no data."""
    version = read_int(stream)
    if version != 1:
        raise DlibFormatError(f"unsupported alias_tensor version {version} (expected 1)")
    return _read_dims(stream, "alias_tensor")


# ---------------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputLayer:
    means: tuple[float, float, float]  # R, G, B
    nr: int
    nc: int


@dataclass(frozen=True)
class Conv:
    weights: np.ndarray  # OIHW
    bias: np.ndarray  # O
    stride: tuple[int, int]
    padding: tuple[int, int]

    @property
    def num_filters(self) -> int:
        return int(self.weights.shape[0])

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weights.shape[2]), int(self.weights.shape[3])


@dataclass(frozen=True)
class Affine:
    gamma: np.ndarray  # per channel
    beta: np.ndarray


@dataclass(frozen=True)
class Relu:
    pass


@dataclass(frozen=True)
class AddPrev:
    pass


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" | "avg"
    window: tuple[int, int]  # (0, 0) = the whole input ("avg_pool_everything")
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class FullyConnected:
    weights: np.ndarray  # (num_inputs, num_outputs): output = input · weights


@dataclass(frozen=True)
class Marker:
    """A tag or skip layer; the file records that one is here but not which one."""


Layer = Conv | Affine | Relu | AddPrev | Pool | FullyConnected | Marker


@dataclass(frozen=True)
class DlibNetwork:
    loss: str
    input: InputLayer
    layers: list[Layer]  # input to output, tag/skip layers included as Marker


def _read_conv(stream: BinaryIO) -> Conv:
    params = read_tensor(stream).ravel()
    num_filters, nr, nc, stride_y, stride_x, pad_y, pad_x = (read_int(stream) for _ in range(7))
    filters = read_alias_tensor(stream)
    biases = read_alias_tensor(stream)
    for _ in range(4):  # learning-rate and weight-decay multipliers: training only
        read_float(stream)
    n_w, n_b = math.prod(filters), math.prod(biases)
    if filters[0] != num_filters or filters[2:] != (nr, nc) or n_b != num_filters or params.size != n_w + n_b:
        raise DlibFormatError(f"inconsistent con_ layer: filters {filters}, biases {biases}, {params.size} params")
    return Conv(
        weights=params[:n_w].reshape(filters),
        bias=params[n_w:],
        stride=(stride_y, stride_x),
        padding=(pad_y, pad_x),
    )


def _read_affine(stream: BinaryIO) -> Affine:
    params = read_tensor(stream).ravel()
    gamma, beta = read_alias_tensor(stream), read_alias_tensor(stream)
    mode = read_int(stream)
    n = math.prod(gamma)
    if mode != 0 or gamma != beta or gamma[0] != 1 or params.size != 2 * n:
        raise DlibFormatError(f"unsupported affine_ layer: mode {mode}, gamma {gamma}, beta {beta}")
    return Affine(gamma=params[:n], beta=params[n:])


def _read_pool(stream: BinaryIO, kind: str) -> Pool:
    nr, nc, stride_y, stride_x, pad_y, pad_x = (read_int(stream) for _ in range(6))
    return Pool(kind=kind, window=(nr, nc), stride=(stride_y, stride_x), padding=(pad_y, pad_x))


def _read_fc(stream: BinaryIO) -> FullyConnected:
    num_outputs, num_inputs = read_int(stream), read_int(stream)
    params = read_tensor(stream).ravel()
    weights = read_alias_tensor(stream)
    read_alias_tensor(stream)  # biases
    bias_mode = read_int(stream)
    for _ in range(4):
        read_float(stream)
    if bias_mode != 1 or weights != (num_inputs, num_outputs, 1, 1) or params.size != math.prod(weights):
        raise DlibFormatError(f"unsupported fc_ layer: bias_mode {bias_mode}, weights {weights}")
    return FullyConnected(weights=params.reshape(num_inputs, num_outputs))


_DETAIL_READERS = {
    "con_4": _read_conv,
    "affine_": _read_affine,
    "relu_": lambda s: Relu(),
    "add_prev_": lambda s: AddPrev(),
    "max_pool_2": lambda s: _read_pool(s, "max"),
    "avg_pool_2": lambda s: _read_pool(s, "avg"),
    "fc_2": _read_fc,
}


def read_layer_details(stream: BinaryIO) -> Layer:
    """One layer's details: a name-and-version string (e.g. ``"con_4"``) then that layer's fields."""
    offset = stream.tell()
    name = read_string(stream)
    reader = _DETAIL_READERS.get(name)
    if reader is None:
        raise DlibFormatError(f"unsupported layer {name!r} at offset {offset}")
    return reader(stream)


def _skip_add_layer_state(stream: BinaryIO, *, over_input: bool) -> None:
    """Training state after each layer's details: 3 bools, then empty gradient/output tensors."""
    for _ in range(3):
        read_bool(stream)
    for _ in range(3):  # x_grad, cached_output, params_grad (grad_final when over the input layer)
        read_tensor(stream)
    if over_input:
        read_int(stream)  # sample_expansion_factor (add_layer version 3)


def read_input_rgb_image_sized(stream: BinaryIO) -> InputLayer:
    name = read_string(stream)
    if name != "input_rgb_image_sized":
        raise DlibFormatError(f"unsupported input layer {name!r}")
    means = (read_float(stream), read_float(stream), read_float(stream))
    return InputLayer(means=means, nr=read_int(stream), nc=read_int(stream))


def read_network(stream: BinaryIO) -> DlibNetwork:
    """Parse a ``loss_metric`` network: versions outer→inner, input layer, then layer details input→output."""
    if read_int(stream) != 1:
        raise DlibFormatError("not a dlib add_loss_layer (version != 1)")
    loss = read_string(stream)
    if loss != "loss_metric_2":
        raise DlibFormatError(f"unsupported loss layer {loss!r}")
    read_float(stream)  # margin
    read_float(stream)  # distance threshold
    versions: list[int] = []
    while True:
        version = read_int(stream)
        if version not in (1, 2, 3):
            raise DlibFormatError(f"unexpected layer version {version} at depth {len(versions)}")
        versions.append(version)
        if version == 3:  # add_layer directly over the input layer: innermost
            break
    input_layer = read_input_rgb_image_sized(stream)
    layers: list[Layer] = []
    for version in reversed(versions):
        if version == 1:
            layers.append(Marker())
            continue
        layers.append(read_layer_details(stream))
        _skip_add_layer_state(stream, over_input=version == 3)
    if stream.read(1):
        raise DlibFormatError("trailing bytes after the network")
    return DlibNetwork(loss=loss, input=input_layer, layers=layers)


# ---------------------------------------------------------------------------------------------------------
# Architecture: dlib's anet_type from dnn_face_recognition_ex.cpp, input to output
# ---------------------------------------------------------------------------------------------------------

# Tokens: ("con", filters, kernel, stride) ("affine",) ("relu",) ("max_pool", window, stride)
# ("avg_pool", window, stride) (window 0 = everything) ("tag", id) ("skip", id) ("add_prev", tag id)
# ("fc", outputs)
Token = tuple[str | int, ...]


def _ares(n: int) -> list[Token]:
    """relu<add_prev1<block<N, stride 1, tag1<SUBNET>>>>: identity shortcut."""
    return [
        ("tag", 1),
        *[("con", n, 3, 1), ("affine",), ("relu",), ("con", n, 3, 1), ("affine",)],
        ("add_prev", 1),
        ("relu",),
    ]


def _ares_down(n: int) -> list[Token]:
    """relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N, stride 2, tag1<SUBNET>>>>>>>: pooled shortcut."""
    return [
        ("tag", 1),
        *[("con", n, 3, 2), ("affine",), ("relu",), ("con", n, 3, 1), ("affine",)],
        ("tag", 2),
        ("skip", 1),
        ("avg_pool", 2, 2),
        ("add_prev", 2),
        ("relu",),
    ]


ARCHITECTURE: list[Token] = [
    *[("con", 32, 7, 2), ("affine",), ("relu",), ("max_pool", 3, 2)],
    *_ares(32) * 3,  # alevel4
    *_ares_down(64),  # alevel3
    *_ares(64) * 3,
    *_ares_down(128),  # alevel2
    *_ares(128) * 2,
    *_ares_down(256),  # alevel1
    *_ares(256) * 2,
    *_ares_down(256),  # alevel0
    ("avg_pool", 0, 1),  # avg_pool_everything
    ("fc", DESCRIPTOR_DIM),  # fc_no_bias
]


def _check_layer(token: Token, layer: Layer, index: int) -> None:
    kind = token[0]
    ok: bool
    if kind in ("tag", "skip"):
        ok = isinstance(layer, Marker)
    elif kind == "con":
        _, filters, kernel, stride = token
        ok = isinstance(layer, Conv) and (layer.num_filters, layer.kernel, layer.stride) == (
            filters,
            (kernel, kernel),
            (stride, stride),
        )
    elif kind in ("max_pool", "avg_pool"):
        _, window, stride = token
        ok = isinstance(layer, Pool) and (layer.kind, layer.window, layer.stride) == (
            kind.removesuffix("_pool"),
            (window, window),
            (stride, stride),
        )
    elif kind == "fc":
        ok = isinstance(layer, FullyConnected) and layer.weights.shape[1] == token[1]
    else:
        ok = type(layer) is {"affine": Affine, "relu": Relu, "add_prev": AddPrev}[str(kind)]
    if not ok:
        raise DlibFormatError(f"layer {index} is {layer!r:.120}, but the architecture expects {token}")


# ---------------------------------------------------------------------------------------------------------
# ONNX graph
# ---------------------------------------------------------------------------------------------------------


def _out_size(size: int, window: int, stride: int, pad: int) -> int:
    # dlib and ONNX (ceil_mode=0) agree: floor((in + 2·pad − window) / stride) + 1
    return (size + 2 * pad - window) // stride + 1


class _GraphBuilder:
    """Emits ONNX nodes while tracking each tensor's static (C, H, W) so shape mismatches are explicit."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counts: dict[str, int] = {}

    def name(self, prefix: str) -> str:
        i = self._counts.get(prefix, 0)
        self._counts[prefix] = i + 1
        return f"{prefix}{i}"

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], prefix: str, **attrs: object) -> str:
        out = self.name(prefix)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _build_graph(net: DlibNetwork) -> onnx.GraphProto:
    if (net.input.nr, net.input.nc) != (CHIP_SIZE, CHIP_SIZE):
        raise DlibFormatError(f"expected a {CHIP_SIZE}x{CHIP_SIZE} input, got {net.input.nr}x{net.input.nc}")
    if len(net.layers) != len(ARCHITECTURE):
        raise DlibFormatError(f"file has {len(net.layers)} layers, architecture has {len(ARCHITECTURE)}")
    for i, (token, layer) in enumerate(zip(ARCHITECTURE, net.layers, strict=True)):
        _check_layer(token, layer, i)

    g = _GraphBuilder()
    # dlib's input_rgb_image_sized: (pixel − channel mean) / 256, in float32, RGB planes.
    mean = g.const("input.mean", np.array(net.input.means, dtype=np.float32))
    scale = g.const("input.scale", np.array(1.0 / 256.0, dtype=np.float32))
    x = g.node("Sub", ["chips", mean], "centered")
    x = g.node("Mul", [x, scale], "scaled")
    x = g.node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    shape = (3, net.input.nr, net.input.nc)

    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    layers = iter(zip(ARCHITECTURE, net.layers, strict=True))
    for token, layer in layers:
        kind = token[0]
        if kind == "tag":
            tags[int(token[1])] = (x, shape)
        elif kind == "skip":
            x, shape = tags[int(token[1])]
        elif isinstance(layer, Conv):
            x, shape = _emit_conv(g, x, shape, layer, layers)
        elif isinstance(layer, Affine):
            x = _emit_affine(g, x, layer)
        elif isinstance(layer, Relu):
            x = g.node("Relu", [x], "relu")
        elif isinstance(layer, Pool):
            x, shape = _emit_pool(g, x, shape, layer)
        elif isinstance(layer, AddPrev):
            x, shape = _emit_add_prev(g, (x, shape), tags[int(token[1])])
        elif isinstance(layer, FullyConnected):
            if shape != (layer.weights.shape[0], 1, 1):
                raise DlibFormatError(f"fc_ expects {layer.weights.shape[0]} inputs, got {shape}")
            x = g.node("Flatten", [x], "flat", axis=1)
            w = g.const(f"{g.name('fc')}.W", layer.weights)
            x = g.node("MatMul", [x, w], "fc_out")
            shape = (layer.weights.shape[1], 1, 1)
    # Rename the last tensor to the public output name.
    g.nodes.append(helper.make_node("Identity", [x], ["descriptors"], name="descriptors"))

    return helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        inputs=[helper.make_tensor_value_info("chips", TensorProto.FLOAT, ["N", CHIP_SIZE, CHIP_SIZE, 3])],
        outputs=[helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["N", DESCRIPTOR_DIM])],
        initializer=g.initializers,
    )


def _emit_conv(
    g: _GraphBuilder, x: str, shape: tuple[int, int, int], conv: Conv, layers: Iterator[tuple[Token, Layer]]
) -> tuple[str, tuple[int, int, int]]:
    """Conv, with the following affine_ folded in (every con_ in this network is followed by one)."""
    token, affine = next(layers)
    if not isinstance(affine, Affine):
        raise DlibFormatError(f"expected affine_ after con_, got {token}")
    if shape[0] != conv.weights.shape[1]:
        raise DlibFormatError(f"con_ expects {conv.weights.shape[1]} channels, got {shape}")
    gamma = affine.gamma.astype(np.float64)
    weights = (conv.weights.astype(np.float64) * gamma[:, None, None, None]).astype(np.float32)
    bias = (conv.bias.astype(np.float64) * gamma + affine.beta).astype(np.float32)
    prefix = g.name("conv")
    (kh, kw), (sy, sx), (py, px) = conv.kernel, conv.stride, conv.padding
    out = g.node(
        "Conv",
        [x, g.const(f"{prefix}.W", weights), g.const(f"{prefix}.B", bias)],
        "conv_out",
        kernel_shape=[kh, kw],
        strides=[sy, sx],
        pads=[py, px, py, px],
    )
    return out, (conv.num_filters, _out_size(shape[1], kh, sy, py), _out_size(shape[2], kw, sx, px))


def _emit_affine(g: _GraphBuilder, x: str, affine: Affine) -> str:
    prefix = g.name("affine")
    gamma = g.const(f"{prefix}.gamma", affine.gamma.reshape(-1, 1, 1))
    beta = g.const(f"{prefix}.beta", affine.beta.reshape(-1, 1, 1))
    return g.node("Add", [g.node("Mul", [x, gamma], "affine_mul"), beta], "affine_out")


def _emit_pool(g: _GraphBuilder, x: str, shape: tuple[int, int, int], pool: Pool) -> tuple[str, tuple[int, int, int]]:
    if pool.window == (0, 0):  # whole input; dlib ignores stride/padding here
        return g.node("GlobalAveragePool", [x], "gap"), (shape[0], 1, 1)
    (kh, kw), (sy, sx), (py, px) = pool.window, pool.stride, pool.padding
    if pool.kind == "avg" and (py or px):
        raise DlibFormatError("padded avg_pool_ is not supported (dlib and ONNX count padding differently)")
    op = "MaxPool" if pool.kind == "max" else "AveragePool"
    out = g.node(op, [x], f"{pool.kind}pool", kernel_shape=[kh, kw], strides=[sy, sx], pads=[py, px, py, px])
    return out, (shape[0], _out_size(shape[1], kh, sy, py), _out_size(shape[2], kw, sx, px))


def _emit_add_prev(
    g: _GraphBuilder, a: tuple[str, tuple[int, int, int]], b: tuple[str, tuple[int, int, int]]
) -> tuple[str, tuple[int, int, int]]:
    """dlib's add_prev: the output has the larger size in every dim; the smaller tensor is zero-padded at
    the end (more channels after a stride-2 block, and 3x3 vs 4x4 / 1x1 vs 2x2 where the strided conv and
    the 2x2 avg pool round the odd input differently)."""
    shape = tuple(max(p, q) for p, q in zip(a[1], b[1], strict=True))
    inputs = []
    for name, s in (a, b):
        if s != shape:
            pads = np.array([0, 0, 0, 0, 0, *(t - d for t, d in zip(shape, s, strict=True))], dtype=np.int64)
            name = g.node("Pad", [name, g.const(f"{g.name('pad')}.pads", pads)], "padded")
        inputs.append(name)
    return g.node("Add", inputs, "add"), (shape[0], shape[1], shape[2])


# ---------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------


def build_model(net: DlibNetwork, *, source_sha256: str = "") -> onnx.ModelProto:
    model = helper.make_model(
        _build_graph(net),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="facesearch.models.dlib_convert",
        producer_version="1",
        doc_string="dlib_face_recognition_resnet_model_v1: RGB uint8-valued NHWC 150x150 chips -> "
        "128-d unnormalised descriptors (same person if euclidean distance < 0.6)",
    )
    model.ir_version = IR_VERSION
    if source_sha256:
        helper.set_model_props(model, {"source_sha256": source_sha256})
    onnx.checker.check_model(model, full_check=True)
    return model


def convert_dlib_resnet(dat_path: Path, onnx_path: Path) -> None:
    """Convert the .dat to ONNX at ``onnx_path`` (atomically). Same input → byte-identical output."""
    data = Path(dat_path).read_bytes()
    net = read_network(io.BytesIO(data))
    model = build_model(net, source_sha256=hashlib.sha256(data).hexdigest())
    payload = model.SerializeToString(deterministic=True)
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=onnx_path.parent, prefix=onnx_path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the model is not a secret
        os.replace(tmp, onnx_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m facesearch.models.dlib_convert",
        description="Convert dlib_face_recognition_resnet_model_v1.dat to ONNX.",
    )
    parser.add_argument("dat", type=Path, help="dlib_face_recognition_resnet_model_v1.dat")
    parser.add_argument("out", type=Path, help="output .onnx path")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        convert_dlib_resnet(args.dat, args.out)
    except (OSError, DlibFormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} in {time.perf_counter() - start:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
