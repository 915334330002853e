#!/usr/bin/env bash
# Idempotent set-up of the local cloud (run after ./scripts/setup.sh; demo.sh and test.sh call it):
#   LocalStack 2026.3.0 in its own Python 3.13 virtualenv, kinesis-local@0.5.2 from npm, the Lambda runtime
#   stand-ins (Python 3.11/3.12/3.13 + boto3), our LocalStack plugins (localcloud/plugins), the CDK CLI and
#   cdklocal into ./node_modules (npm ci from package-lock.json), and the OpenSearch node.
# Everything is cached under ~/.cache/facesearch (FACESEARCH_LOCALSTACK_CACHE overrides), stamped, and nothing
# is downloaded when the local cloud runs.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  ./scripts/setup.sh
fi
for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "the local cloud needs $tool (Node 20+)" >&2; exit 1; }
done
exec .venv/bin/python -m facesearch.devtools.localcloud provision
