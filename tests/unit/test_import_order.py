"""faiss and onnxruntime (each with its own native libraries and thread pools) load in one process in any order."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "code",
    [
        "import facesearch.store.embedded; import onnxruntime",
        "import facesearch.store.embedded; import facesearch.engine.engine",
        "import facesearch.engine.engine; import facesearch.store.embedded",
    ],
)
def test_store_and_engine_import_in_any_order(code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code + "; print('ok')"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr[-2000:])
