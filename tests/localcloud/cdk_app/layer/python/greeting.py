"""A module that only the layer provides: proves layers are on the function's sys.path."""

import os
from pathlib import Path


def model_text() -> str:
    """Read a file from the layer through the /opt path the CDK environment names (FACESEARCH_MODEL_DIR)."""
    return (Path(os.environ["FACESEARCH_MODEL_DIR"]) / "model.txt").read_text().strip()
