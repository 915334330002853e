"""The api function runs on the lean Lambda layer, which has no OpenCV: its whole import (cold start included) must
not need ``cv2`` — the stream-processor registry it serves lives apart from the video code (found on the local
cloud: 'No module named cv2' failed every API call)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_api_function_imports_without_opencv(tmp_path):
    code = (
        "import sys; sys.modules['cv2'] = None\n"  # any `import cv2` now raises ImportError
        f"sys.path.insert(0, {str(REPO / 'functions' / 'api')!r})\n"
        "import app\n"
        "assert 'facesearch.video.frames' not in sys.modules\n"
    )
    env = {
        **os.environ,
        "FACESEARCH_HOME": str(tmp_path),
        "FACESEARCH_STATE_TABLE": "state",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
