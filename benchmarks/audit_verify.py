"""How long `tally audit verify` takes over a long chain, against building that chain.

Why this shape: issue 16 asks that an auditor can verify a 100,000-transaction chain in under
five minutes. At one block a second a real validator needs hours to make such a chain, so it
is written straight into a validator's LevelDB datadir by `benchmarks/sync.build_chain` (the
node's own `node.chain.Chain`: build, seal, commit; plain transfers and WalletToken payments
alternately, between holders that `benchmarks/state_growth.grow` writes at genesis). The
validator is then started as a `tally run` process of a `node.localnet` network and `tally
audit verify --rpc URL` is run against it as an auditor would, timed from its start to its
exit. The peer is the in-process build of the same chain in the same run: verify/build says
how the audit's cost compares with the node's own cost of executing and committing it.

    python benchmarks/audit_verify.py                       # 1,000 blocks of 100 transactions
    python benchmarks/audit_verify.py --blocks 100 --txs 50 --reexecute
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.sync import prebuilt_network, serve_prebuilt
from benchmarks.throughput import BenchError
from node import localnet

ISSUE_BAR_S = 300.0
"""Issue 16: 100,000 transactions verified in under five minutes."""


def verify(url: str, reexecute: bool, timeout: float) -> tuple[float, str]:
    """Run `tally audit verify` against `url`; its wall time and its report line."""
    command = [sys.executable, "-m", "tally_cli", "audit", "verify", "--rpc", url]
    if reexecute:
        command.append("--reexecute")
    t0 = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    took = time.monotonic() - t0
    if done.returncode != 0 or "all checks passed" not in done.stdout:
        raise BenchError(
            f"audit exited {done.returncode}: {done.stdout[-1500:]}{done.stderr[-1500:]}"
        )
    return took, done.stdout.splitlines()[0]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--blocks", type=int, default=1000, help="blocks in the chain")
    ap.add_argument("--txs", type=int, default=100, help="transactions per block")
    ap.add_argument("--senders", type=int, default=100, help="keyed holders that pay")
    ap.add_argument("--holders", type=int, default=1000, help="accounts in the genesis")
    ap.add_argument("--block-period", type=int, default=1, help="seconds between blocks")
    ap.add_argument("--seed", type=int, default=16, help="the genesis generator's seed")
    ap.add_argument("--reexecute", action="store_true", help="also time `verify --reexecute`")
    ap.add_argument("--timeout", type=float, default=3600.0, help="audit timeout (s)")
    ap.add_argument("--keep", type=Path, help="keep the network under this directory")
    args = ap.parse_args(argv)
    if args.blocks < 1 or args.txs < 1 or not 0 < args.senders < args.holders:
        ap.error("need --blocks >= 1, --txs >= 1 and 0 < --senders < --holders")
    with tempfile.TemporaryDirectory(prefix="tally-audit-") as tmp:
        directory = (args.keep or Path(tmp)) / "net"
        nodes, sent, built = prebuilt_network(directory, 0, args)
        (node,) = nodes
        try:
            serve_prebuilt(directory, nodes, args.blocks, 300)
            runs = [False, True] if args.reexecute else [False]
            for reexecute in runs:
                took, line = verify(node.url, reexecute, args.timeout)
                label = "verify --reexecute" if reexecute else "verify"
                print(f"{label}: {line}")
                print(
                    f"  {took:.1f} s wall ({sent / took:,.0f} tx/s, {args.blocks / took:,.1f} "
                    f"blocks/s); verify/build {took / built:.2f}x"
                )
                if not reexecute:
                    scaled = took * 100_000 / sent
                    verdict = "meets" if scaled < ISSUE_BAR_S else "misses"
                    print(
                        f"  100,000 transactions at this rate: {scaled:.0f} s, {verdict} "
                        f"issue 16's {ISSUE_BAR_S:.0f} s"
                    )
        except (BenchError, subprocess.TimeoutExpired) as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1
        finally:
            localnet.down(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
