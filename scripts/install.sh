#!/usr/bin/env bash
# Install everything Tally needs on a fresh machine: Debian packages used by the tests
# (docker-compose, to validate the compose file without an engine; softhsm2, the PKCS#11 token
# the client SDK's tests generate keys in), the Python package with
# test extras, and the pinned npm tooling (solc, OpenZeppelin, ethers, anvil/cast). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=()
  for package in docker-compose softhsm2 chromium; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"
npm ci --no-audit --no-fund --loglevel=error
