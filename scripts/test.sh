#!/usr/bin/env bash
# The whole check suite: lint, types, compiled contracts current, compose file valid, every test.
# Runs with the tools scripts/install.sh put in .venv (the versions constraints.txt pins).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
if [ ! -x "$bin/python" ]; then
  echo "no .venv here: run 'bash scripts/install.sh' first" >&2
  exit 1
fi
"$bin/ruff" check .
"$bin/mypy"
"$bin/lint-imports" --no-cache
node scripts/build_contracts.mjs --check
if command -v docker-compose >/dev/null; then
  docker-compose config -q
else
  echo "docker-compose not installed: compose file not validated" >&2
  exit 1
fi
"$bin/python" -m pytest -q -p no:cacheprovider "$@"
