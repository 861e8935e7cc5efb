"""The genesis report a datadir keeps, so that a restart decides `tally run`'s dev-key refusal
without building block 0 again.

`inspect_genesis` builds block 0's whole state in memory and asks its contracts who holds
what: minutes for a 1,000,000-account genesis (issue 16). The report is a pure function of the
genesis, so a node keeps it in its datadir under the sha256 of the genesis file's bytes
(`node.chain.genesis_file`), and a start on the same bytes reads it back instead. The refusal
itself is still decided on every start, from the report and that start's flags. A missing
report, one of other bytes, or one that does not read back means inspecting again, as on a
first start.

Trusting a file in the datadir adds no risk: whoever can write the datadir can replace the
chain itself (its LevelDB, its node key, the chain's own record of its genesis), which no
check of the genesis file would notice.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from node.chain.genesis_file import GenesisFile
from node.genesis.inspect import inspect_genesis
from node.genesis.report import GenesisReport
from tally_common.keystore.file import write_atomically

REPORT_FILE = "genesis-report.json"

log = logging.getLogger(__name__)


class KeptReport:
    """The report of one genesis file, as one datadir keeps it.

    Nothing is written until `keep`, which `tally run` calls only once the node has opened
    the datadir and found this genesis's chain there: a refused start changes nothing.
    """

    def __init__(self, datadir: Path, source: GenesisFile) -> None:
        self.path = datadir / REPORT_FILE
        self.source = source
        self._inspected: GenesisReport | None = None

    def report(self) -> GenesisReport:
        """The kept report of this genesis file, else one inspected now (held for `keep`)."""
        kept = self._load()
        if kept is not None:
            return kept
        self._inspected = inspect_genesis(self.source.genesis, self.source.block_zero())
        return self._inspected

    def keep(self) -> None:
        """Write the report inspected on this start, if any, and let it go: it lists every
        allocation, too much to hold for the node's lifetime. Written whole or not at all,
        and a failure only logged: the next start inspects."""
        if self._inspected is None:
            return
        document = {"genesis_sha256": self.source.sha256.hex(), "report": self._inspected.to_json()}
        self._inspected = None
        try:
            write_atomically(self.path, json.dumps(document).encode(), mode=0o644)
        except OSError as exc:
            log.warning(
                "cannot keep the genesis report in %s (%s): the next start inspects it again",
                self.path,
                exc,
            )

    def _load(self) -> GenesisReport | None:
        """The kept report if it is of this genesis file's bytes and reads back, else None."""
        try:
            document = json.loads(self.path.read_bytes())
            if document["genesis_sha256"] != self.source.sha256.hex():
                return None
            return GenesisReport.from_json(document["report"])
        except (OSError, AttributeError, KeyError, TypeError, ValueError):
            return None
