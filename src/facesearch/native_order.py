"""Load onnxruntime's native library before usearch's.

With the wheels we pin (onnxruntime 1.32, usearch 2.26), importing ``usearch.index`` first and
``onnxruntime`` second kills the process with a segmentation fault inside onnxruntime's pybind module;
the other order works. Any process may need both (the CLI, a Lambda handler that searches), and which
one it imports first depends on the code path, so the store package (``facesearch/store/__init__.py``)
imports this module before any backend imports usearch.
Guarded by tests/unit/test_native_order.py.
"""

from __future__ import annotations

import contextlib

with contextlib.suppress(ImportError):  # an install without the engine has no onnxruntime to protect
    import onnxruntime  # noqa: F401
