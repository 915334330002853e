"""Without OpenCV (the lean Lambda install) the engine finds the same faces and computes the same descriptors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facesearch.engine import imageops

pytest.importorskip("cv2", reason="the comparison needs OpenCV (the `opencv` extra)")


def test_faces_dev_results_are_identical_on_the_numpy_port(engine, faces_dev: Path) -> None:
    names = ["couple.jpg", "img1.jpg", "img47.jpg", "selfie-many-people.jpg", "img11_reflection.jpg"]
    compared = 0
    for name in names:
        data = (faces_dev / "images" / name).read_bytes()
        imageops.use_opencv(True)
        with_cv2 = engine.analyze(data)
        imageops.use_opencv(False)
        try:
            without = engine.analyze(data)
        finally:
            imageops.use_opencv(True)
        assert len(with_cv2.faces) == len(without.faces) > 0, name
        for a, b in zip(with_cv2.faces, without.faces, strict=True):
            assert a.box == b.box and a.quality == b.quality and a.rejected_reasons == b.rejected_reasons
            np.testing.assert_array_equal(a.landmarks, b.landmarks)
            np.testing.assert_array_equal(a.descriptor, b.descriptor)
            compared += 1
    assert compared >= 10


def test_an_install_without_opencv_runs_the_port_and_gets_the_same_descriptors(engine, faces_dev: Path) -> None:
    """A fresh interpreter where ``import cv2`` fails, as in the Lambda layer."""
    import json
    import subprocess
    import sys

    image = faces_dev / "images" / "couple.jpg"
    code = (
        "import json, sys\n"
        "sys.modules['cv2'] = None  # import cv2 raises ImportError\n"
        "from facesearch.engine import imageops\n"
        "from facesearch.engine.engine import FaceEngine\n"
        f"faces = FaceEngine(threads=1).analyze(open({str(image)!r}, 'rb').read()).faces\n"
        "vectors = [f.descriptor.tolist() for f in faces]\n"
        "print(json.dumps({'opencv': imageops.using_opencv(), 'descriptors': vectors}))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    imageops.use_opencv(True)
    expected = [f.descriptor for f in engine.analyze(image.read_bytes()).faces]
    assert out["opencv"] is False and len(out["descriptors"]) == len(expected) > 0
    for got, want in zip(out["descriptors"], expected, strict=True):
        np.testing.assert_array_equal(np.array(got, dtype=np.float32), want)
