#!/usr/bin/env bash
# Install everything Tally needs on a fresh machine: the Python package (with test extras) and
# the pinned npm tooling (solc, OpenZeppelin, ethers, anvil/cast). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"
npm ci --no-audit --no-fund --loglevel=error
