#!/usr/bin/env bash
# The whole check suite: lint, compiled contracts current, then every test (slow ones included).
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check .
node scripts/build_contracts.mjs --check
python3 -m pytest -q -p no:cacheprovider "$@"
