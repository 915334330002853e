#!/usr/bin/env bash
# The main job end to end on the embedded default: no AWS account, no Docker.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/facesearch demo "$@"
