#!/usr/bin/env bash
# The whole check suite: lint, types, compiled contracts current, compose file valid, every test.
# Arguments go to pytest, which then runs just those in one process
# (e.g. `bash scripts/test.sh tests/test_txpool.py`).
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
pytest=("$bin/python" -m pytest -q -p no:cacheprovider)
if [ "$#" -gt 0 ]; then  # a chosen subset: as asked, in one process
  exec "${pytest[@]}" "$@"
fi
# Most tests wait on 1 s blocks more than they compute, so two workers (pytest-xdist, each
# test file whole on one worker) nearly halve the wall time on two cores. Files marked
# `serial` (several node processes, or time budgets a busy neighbour would break) run alone
# afterwards. Both parts always run; the script fails if either did.
status=0
"${pytest[@]}" -n 2 --dist loadfile -m "not serial" || status=$?
"${pytest[@]}" -m serial || status=$?
exit "$status"
