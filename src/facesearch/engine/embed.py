"""Face descriptors: aligned 150x150 RGB chips → dlib's 128-d ResNet descriptors, via onnxruntime.

The model is our ONNX conversion of ``dlib_face_recognition_resnet_model_v1`` (see
``facesearch.models.dlib_convert``); it matches dlib's own output to ~1e-6, so dlib's threshold applies:
two chips show the same person when the euclidean distance between their descriptors is below 0.6.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from facesearch.engine.cores import available_cores
from facesearch.models.registry import model_path as registry_model_path

CHIP_SHAPE = (150, 150, 3)
DESCRIPTOR_DIM = 128
MODEL_NAME = "dlib_resnet_v1.onnx"


class Embedder:
    """Owns one onnxruntime session, built once and reused: creating it costs far more than one batch."""

    def __init__(self, model_path: Path | None = None, *, threads: int | None = None, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        # The registry checks the pinned sha256, so a stale or foreign model is refused rather than used.
        path = Path(model_path) if model_path is not None else registry_model_path(MODEL_NAME)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or available_cores()
        so.inter_op_num_threads = 1  # the graph is one chain; parallelism is inside the convolutions
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Without this, idle pool threads spin-wait after each run and burn CPU the rest of the process
        # (and the other services sharing the machine) could use.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.model_path = path
        self.batch_size = batch_size
        self._session = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """uint8 RGB chips (N, 150, 150, 3) → float32 descriptors (N, 128), unnormalised like dlib's.

        Runs in batches of ``batch_size`` so memory stays bounded however many faces one image holds.
        """
        if not isinstance(chips, np.ndarray):
            raise ValueError(f"chips must be a numpy array, got {type(chips).__name__}")
        if chips.dtype != np.uint8:
            raise ValueError(f"chips must be uint8 RGB, got dtype {chips.dtype}")
        if chips.ndim != 4 or chips.shape[1:] != CHIP_SHAPE:
            raise ValueError(f"chips must have shape (N, 150, 150, 3), got {chips.shape}")
        out = np.empty((chips.shape[0], DESCRIPTOR_DIM), dtype=np.float32)
        for start in range(0, chips.shape[0], self.batch_size):
            batch = chips[start : start + self.batch_size].astype(np.float32)
            out[start : start + len(batch)] = self._session.run([self._output], {self._input: batch})[0]
        return out
