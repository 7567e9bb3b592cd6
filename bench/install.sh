#!/usr/bin/env bash
# The tools bench/run.py compares, each outside the repo, so none sees another's packages:
#   /tmp/upstream-qik: qik 0.2.10 from PyPI (with its s3 extra)
#   /tmp/ours-qik:     this checkout's committed HEAD (git archive), with the s3 extra
#   /tmp/turbo-peer:   Turborepo from npm (node_modules/.bin/turbo; needs npm, and node to run)
#   /tmp/doit-peer:    pydoit from PyPI, in its own venv (bin/doit)
# Usage: bench/install.sh [UPSTREAM_DIR] [OURS_DIR]
# Environment: TURBO_DIR, DOIT_DIR, TURBO_VERSION (2.11.11), DOIT_VERSION (0.37.0), PYTHON.
# Idempotent: a tool already in place is kept (ours is reinstalled from HEAD every time).
set -euo pipefail
cd "$(dirname "$0")/.."
up=${1:-/tmp/upstream-qik}
ours=${2:-/tmp/ours-qik}
turbo=${TURBO_DIR:-/tmp/turbo-peer}
doit=${DOIT_DIR:-/tmp/doit-peer}
PY=${PYTHON:-python3}
if [ ! -x "$up/bin/qik" ]; then
  "$PY" -m venv "$up"
  "$up/bin/pip" install -q "qik[s3]==0.2.10"
fi
src=$(mktemp -d)
git archive HEAD | tar -x -C "$src"
[ -x "$ours/bin/pip" ] || "$PY" -m venv "$ours"
"$ours/bin/pip" install -q --force-reinstall --no-deps "$src"
"$ours/bin/pip" install -q "$src[s3]"
rm -rf "$src"
if [ ! -x "$turbo/node_modules/.bin/turbo" ]; then
  if command -v npm > /dev/null; then
    # The turbo package brings its platform's binary as an optional dependency (turbo-linux-64).
    npm install --prefix "$turbo" --no-audit --no-fund --loglevel=error "turbo@${TURBO_VERSION:-2.11.11}"
  else
    echo "npm not found: Turborepo not installed (bench/run.py skips it)" >&2
  fi
fi
if [ ! -x "$doit/bin/doit" ]; then
  "$PY" -m venv "$doit"
  "$doit/bin/pip" install -q "doit==${DOIT_VERSION:-0.37.0}"
fi
echo "upstream: $up/bin/qik"
echo "ours:     $ours/bin/qik"
[ -x "$turbo/node_modules/.bin/turbo" ] && echo "turbo:    $turbo/node_modules/.bin/turbo"
echo "doit:     $doit/bin/doit"
