#!/usr/bin/env bash
# Install everything Tally needs on a fresh machine, from pinned versions only, so that a new
# machine gets what CI tested and not whatever was published since:
#   - Debian packages the tests use (as root): softhsm2 (the PKCS#11 token the key-store tests
#     generate keys in), postgresql (the bank gateway's tests start throwaway clusters with its
#     initdb/pg_ctl; as root they run them as `nobody`), libfaketime (a node dated days back,
#     for reconciliation over earlier days), chromium (the explorer's browser
#     tests), docker-compose (validates the compose file without an engine), python3-venv and
#     a C toolchain for wheels that compile;
#   - a virtual environment in .venv (works where the system Python refuses global installs,
#     PEP 668) holding the tally package with its test extras, every version fixed by
#     constraints.txt;
#   - the npm tooling pinned by package-lock.json (solc, OpenZeppelin, ethers, viem, anvil, cast);
#   - `tally`, `cast` and `anvil` linked onto PATH (/usr/local/bin as root, else ~/.local/bin).
# Idempotent: run it again after pulling. Update constraints.txt on purpose, never implicitly
# (see the README's "Dependencies" section).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/.venv"

step() { printf '\n==> %s\n' "$*"; }

if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=()
  for package in docker-compose softhsm2 postgresql libfaketime chromium python3-venv python3-dev build-essential; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    step "Debian packages: all present"
  fi
else
  step "Debian packages: skipped (not root); the tests need softhsm2, postgresql, libfaketime, chromium, docker-compose"
fi

python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  step "Python virtual environment: $venv ($($python --version))"
  "$python" -m venv "$venv"
else
  step "Python virtual environment: $venv (exists)"
fi

step "Python packages: tally and its test tools, versions from constraints.txt (a few minutes)"
"$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off -q \
  -c constraints.txt pip setuptools wheel
# Builds (this package, any dependency shipped as source) use the venv's pinned setuptools
# rather than whatever a build-isolation environment would download today.
"$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
  --no-build-isolation -c constraints.txt -e ".[test]" \
  | { grep --line-buffered -E '^(Collecting|Successfully)' || true; } | sed -u 's/^/    /'
"$venv/bin/python" -m pip check >/dev/null || {
  echo "pip check found broken requirements:" >&2
  "$venv/bin/python" -m pip check >&2
  exit 1
}

step "npm tooling: versions from package-lock.json"
npm ci --no-audit --no-fund --loglevel=error

if [ "$(id -u)" = 0 ]; then bin=/usr/local/bin; else bin="$HOME/.local/bin"; fi
step "Commands: tally, cast, anvil linked into $bin"
mkdir -p "$bin"
ln -sf "$venv/bin/tally" "$bin/tally"
for tool in cast anvil; do
  found=$(ls "$root"/node_modules/@foundry-rs/"$tool"-linux-*/bin/"$tool" 2>/dev/null | head -n 1)
  if [ -n "$found" ]; then ln -sf "$found" "$bin/$tool"; fi
done
case ":$PATH:" in
  *":$bin:"*) ;;
  *) echo "    note: $bin is not on your PATH; add it (or log in again) to type 'tally'" ;;
esac

step "Done: start a dev chain with 'tally dev'; run the checks with 'bash scripts/test.sh'"
