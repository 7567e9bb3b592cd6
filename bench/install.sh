#!/usr/bin/env bash
# Two venvs outside the repo, one per qik, so neither sees the other's packages:
#   /tmp/upstream-qik: qik 0.2.10 from PyPI (with its s3 extra)
#   /tmp/ours-qik:     this checkout's committed HEAD (git archive), with the s3 extra
# Usage: bench/install.sh [UPSTREAM_DIR] [OURS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
up=${1:-/tmp/upstream-qik}
ours=${2:-/tmp/ours-qik}
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
echo "upstream: $up/bin/qik"
echo "ours:     $ours/bin/qik"
