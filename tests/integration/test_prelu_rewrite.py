"""The PReLU rewrite happens at model build time: deterministic, pinned, and nothing the engine imports needs onnx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facesearch.models.registry import ARTIFACTS, RUNTIME_MODELS, model_path, sha256_file

onnx = pytest.importorskip("onnx", reason="the model build needs the `models` extra")


@pytest.mark.parametrize("name", ["pnet", "rnet", "onet"])
def test_rewriting_the_shipped_graph_gives_the_pinned_bytes(name: str, tmp_path: Path) -> None:
    from facesearch.models.prelu import write_rewritten

    out = write_rewritten(model_path(f"{name}.onnx"), tmp_path / f"{name}_fast.onnx")
    assert sha256_file(out) == ARTIFACTS[f"{name}_fast.onnx"]
    graph = onnx.load(str(out)).graph
    slopes = {t.name: len(t.dims) for t in graph.initializer}
    conv_prelus = [n for n in graph.node if n.op_type == "PRelu" and slopes.get(n.input[1]) == 4]
    assert conv_prelus == []  # every per-channel PRelu after a conv is gone (those after dense layers are cheap)
    assert {"Relu", "Conv", "Add"} <= {n.op_type for n in graph.node}


def test_the_engine_loads_only_rewritten_graphs_and_never_imports_onnx() -> None:
    """Load the whole engine in a fresh interpreter and check which modules it pulled in."""
    code = (
        "import sys\n"
        "from facesearch.engine.engine import FaceEngine\n"
        "engine = FaceEngine(threads=1)\n"
        "print(sorted(m for m in sys.modules if m == 'onnx' or m.startswith('onnx.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert set(RUNTIME_MODELS) <= set(ARTIFACTS)
    assert not any(n in RUNTIME_MODELS for n in ("pnet.onnx", "rnet.onnx", "onet.onnx"))


def test_faces_dev_detections_and_descriptors_equal_those_of_the_shipped_graphs(faces_dev: Path) -> None:
    """On real photos, the engine with the build-time rewritten graphs finds the same faces, landmarks and
    descriptors as with the graphs exactly as shipped (what the engine computed when it rewrote them at load)."""
    from facesearch.engine.detect import load_session
    from facesearch.engine.engine import FaceEngine

    fast = FaceEngine(threads=1)
    shipped = FaceEngine(threads=1)
    det = shipped.detector
    det._pnet, det._rnet, det._onet = (load_session(f"{n}.onnx", threads=1) for n in ("pnet", "rnet", "onet"))
    names = ["couple.jpg", "img1.jpg", "img47.jpg", "selfie-many-people.jpg"]
    found = 0
    for name in names:
        data = (faces_dev / "images" / name).read_bytes()
        a, b = fast.analyze(data), shipped.analyze(data)
        assert len(a.faces) == len(b.faces) > 0
        for fa, fb in zip(a.faces, b.faces, strict=True):
            assert fa.box == fb.box
            np.testing.assert_array_equal(fa.landmarks, fb.landmarks)
            np.testing.assert_allclose(fa.descriptor, fb.descriptor, rtol=0, atol=1e-6)
            found += 1
    assert found >= 8
