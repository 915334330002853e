#!/usr/bin/env bash
# The whole test suite, or one tier of it: ./scripts/test.sh [TIER] [pytest args...]
#   unit         no models, no servers, no shared datasets (about a minute)
#   integration  real models and the shared datasets; a real OpenSearch where a test needs one
#   contract     the VectorStore contract on every backend (embedded, and a real OpenSearch)
#   e2e          the CLI as a user runs it (exit codes, files)
#   cdk          the CDK app synthesized: assertions, cdk-nag, cfn-lint, the layer builder
#   cloud        the local cloud: LocalStack without Docker (our plugins, a probe CDK app: tests/localcloud) and the
#                real CDK app deployed into it, end to end (tests/e2e_cloud); ~10 minutes
# With no tier: set-up (incl. the local cloud's), lint (ruff), type check (mypy), then every tier.
set -euo pipefail
cd "$(dirname "$0")/.."

tiers=(unit integration contract e2e cdk cloud)
tier=""
if [ $# -gt 0 ] && [[ " ${tiers[*]} " == *" $1 "* ]]; then
  tier="$1"
  shift
fi

./scripts/setup.sh

if [ -z "$tier" ] || [ "$tier" = cloud ]; then
  echo "==> local cloud (LocalStack, kinesis-local, plugins, CDK CLI; cached outside the repo)"
  ./scripts/setup_localcloud.sh
fi

if [ -z "$tier" ] || [ "$tier" != unit ]; then
  echo "==> OpenSearch (provisioned from Maven Central, cached outside the repo)"
  .venv/bin/python -m facesearch.devtools.opensearch_local provision
fi

if [ -z "$tier" ]; then
  echo "==> ruff"
  .venv/bin/ruff check .
  .venv/bin/ruff format --check .
  echo "==> mypy"
  .venv/bin/mypy
fi

echo "==> pytest ${tier:-all tiers}"
if [ "$tier" = cloud ]; then
  exec .venv/bin/python -m pytest tests/localcloud tests/e2e_cloud "$@"
fi
if [ -n "$tier" ]; then
  exec .venv/bin/python -m pytest "tests/$tier" "$@"
fi
exec .venv/bin/python -m pytest "$@"
