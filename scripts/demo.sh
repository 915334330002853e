#!/usr/bin/env bash
# The main job end to end on this machine, no AWS account and no Docker:
#   ./scripts/demo.sh             the local cloud: LocalStack + OpenSearch + the real CDK app (started, or reused if
#                                 already up), the dev gallery uploaded to the gallery bucket and indexed by Lambda,
#                                 group photos searched through the query bucket; left running
#                                 (tear down: .venv/bin/facesearch local down)
#   ./scripts/demo.sh --embedded  the embedded engine and store only (no cloud at all)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if [ "${1:-}" = "--embedded" ]; then
  shift
  exec .venv/bin/facesearch demo "$@"
fi
./scripts/setup_localcloud.sh
exec .venv/bin/facesearch demo --cloud "$@"
