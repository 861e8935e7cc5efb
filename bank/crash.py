"""Fault injection for crash tests: hard-exit at a named step, as `kill -9` would stop us there.

`TALLY_BANK_CRASH_AT=<point>` makes the gateway call `os._exit(CRASH_EXIT)` (no cleanup, no
flush of anything uncommitted) the first time it reaches that point. Unset, a crash point costs
one dictionary lookup. The points, in the order money moves:

- `topup.received`: the top-up is recorded; the rail has not been asked;
- `topup.authorized`: the rail authorized; the gateway has not recorded it;
- `topup.captured`: the rail captured; the gateway has not recorded it (nor the mint);
- `topup.recorded`: the capture and its pending mint are committed; nothing sent;
- `outbox.sent`: a chain transaction (mint, burn, reject) is sent; its hash not recorded;
- `outbox.recorded`: the hash is recorded; the outcome not yet;
- `withdrawal.recorded`: a `WithdrawalRequested` is committed, not yet acknowledged to the
  node's event stream (so it is delivered again);
- `withdrawal.paid`: the rail paid out; the gateway has not recorded it (nor the burn).
"""

from __future__ import annotations

import os
import sys

ENV = "TALLY_BANK_CRASH_AT"
CRASH_EXIT = 86
POINTS = (
    "topup.received",
    "topup.authorized",
    "topup.captured",
    "topup.recorded",
    "outbox.sent",
    "outbox.recorded",
    "withdrawal.recorded",
    "withdrawal.paid",
)


def crash_point(name: str) -> None:
    """Exit the process here, at once, if `TALLY_BANK_CRASH_AT` names this point."""
    if os.environ.get(ENV) == name:
        sys.stderr.write(f"crash point {name}: exiting with {CRASH_EXIT}\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT)
