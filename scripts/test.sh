#!/usr/bin/env bash
# The whole check suite: lint, compiled contracts current, compose file valid, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check .
node scripts/build_contracts.mjs --check
if command -v docker-compose >/dev/null; then
  docker-compose config -q
else
  echo "docker-compose not installed: compose file not validated" >&2
  exit 1
fi
python3 -m pytest -q -p no:cacheprovider "$@"
