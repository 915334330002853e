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
