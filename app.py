"""CDK app entry point: `npx cdk synth|deploy` runs `.venv/bin/python app.py` (see cdk.json).

Reads the typed config from CDK context, builds the Lambda layers if their build is stale (layers/build.py), then
synthesizes FaceSearchStack with cdk-nag's AwsSolutions checks: any unsuppressed finding fails the synth.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "cdk"))
# This machine has Node 20 (end of life for jsii since 2026-10); the warning says nothing actionable per synth.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from facesearch_cdk.app import build_app  # noqa: E402


def main() -> None:
    app = build_app()
    app.synth()


if __name__ == "__main__":
    main()
