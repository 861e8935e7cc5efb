"""How long `tally --help`, `tally wallet --help` and `tally audit --help` take to answer.

Why: help is the first thing a newcomer runs, and it used to take 4 s, most of it importing
py-evm and web3 that no help text needs. The target is under 1 s on this 2-core machine. This
machine is shared and a single run moves by tens of milliseconds, so every command runs
`--runs` times, the commands interleaved round by round, and the median and the fastest run
are printed beside two peers measured in the same run: the interpreter alone (`python -c
pass`) and the CLI library alone (`python -c "import typer"`), which no `tally` command can
beat.

    python benchmarks/cli_startup.py                  # 9 rounds, this checkout
    python benchmarks/cli_startup.py --runs 21 --tree /path/to/another/checkout
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 1.0

COMMANDS: dict[str, list[str]] = {
    "python -c pass (peer)": ["-c", "pass"],
    'python -c "import typer" (peer)': ["-c", "import typer"],
    "tally --help": ["-m", "tally_cli", "--help"],
    "tally wallet --help": ["-m", "tally_cli", "wallet", "--help"],
    "tally audit --help": ["-m", "tally_cli", "audit", "--help"],
}


def time_once(arguments: list[str], tree: Path) -> float:
    """Wall-clock seconds for one run of the interpreter with `arguments`, from `tree`."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *arguments], cwd=tree, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(arguments)} exited {result.returncode}:\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="Rounds (every command once each).")
    parser.add_argument(
        "--tree",
        type=Path,
        default=Path(__file__).resolve().parents[1],
        help="The checkout to run `python -m tally_cli` from.",
    )
    args = parser.parse_args()
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for arguments in COMMANDS.values():  # one unmeasured run each: warm the .pyc files
        time_once(arguments, args.tree)
    for _ in range(args.runs):
        for name, arguments in COMMANDS.items():
            samples[name].append(time_once(arguments, args.tree))
    typer_median = statistics.median(samples['python -c "import typer" (peer)'])
    print(f"{args.runs} rounds from {args.tree}, {sys.executable}")
    print(f"{'command':<34}{'median s':>10}{'fastest s':>11}{'vs typer':>10}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<34}{median:>10.3f}{min(values):>11.3f}{median / typer_median:>9.1f}x")
    slowest = max(statistics.median(samples[name]) for name in COMMANDS if "tally" in name)
    verdict = "met" if slowest < TARGET_SECONDS else "NOT met"
    print(f"target: every help under {TARGET_SECONDS:.1f} s (median): {verdict}")


if __name__ == "__main__":
    main()
