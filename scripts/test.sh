#!/usr/bin/env bash
# The whole test suite: set-up, lint, then unit, contract (embedded + a real OpenSearch), integration and e2e.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

echo "==> OpenSearch ${FACESEARCH_OPENSEARCH_VERSION:-} (provisioned from Maven Central, cached outside the repo)"
.venv/bin/python -m facesearch.devtools.opensearch_local provision

echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "==> pytest"
exec .venv/bin/python -m pytest "$@"
