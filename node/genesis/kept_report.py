"""What a datadir keeps of its genesis report, so that a restart decides `tally run`'s dev-key
refusal without building block 0 again.

`inspect_genesis` builds block 0's whole state in memory and asks its contracts who holds
what: minutes for a 1,000,000-account genesis (issue 16). The refusal needs only the report's
grants to the well-known dev keys, a pure function of the genesis, so a node keeps those (not
the report, which lists every allocation: 130 MB at that size) in its datadir under the sha256
of the genesis file's bytes (`node.chain.genesis_file`), and a start on the same bytes reads
them back instead. The refusal itself is still decided on every start, from the kept grants and
that start's flags. A missing file, one of other bytes, or one that does not read back (as one
from before this format, which held the whole report) means inspecting again, as on a first
start, and replacing it.

Trusting a file in the datadir adds no risk: whoever can write the datadir can replace the
chain itself (its LevelDB, its node key, the chain's own record of its genesis), which no
check of the genesis file would notice.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from node.chain.genesis_file import GenesisFile
from node.genesis.devkeys import dev_key_grants
from node.genesis.inspect import inspect_genesis
from tally_common.keystore.file import write_atomically

REPORT_FILE = "genesis-report.json"

log = logging.getLogger(__name__)


class KeptReport:
    """The dev-key grants of one genesis file's report, as one datadir keeps them.

    Nothing is written until `keep`, which `tally run` calls only once the node has opened
    the datadir and found this genesis's chain there: a refused start changes nothing.
    """

    def __init__(self, datadir: Path, source: GenesisFile) -> None:
        self.path = datadir / REPORT_FILE
        self.source = source
        self._inspected: list[str] | None = None

    def dev_key_grants(self) -> list[str]:
        """The kept grants of this genesis file, else those inspected now (held for `keep`)."""
        kept = self._load()
        if kept is not None:
            return kept
        self._inspected = dev_key_grants(
            inspect_genesis(self.source.genesis, self.source.block_zero())
        )
        return self._inspected

    def keep(self) -> None:
        """Write the grants inspected on this start, if any: whole or not at all, and a failure
        only logged, since the next start inspects again."""
        if self._inspected is None:
            return
        document = {"genesis_sha256": self.source.sha256.hex(), "dev_key_grants": self._inspected}
        try:
            write_atomically(self.path, json.dumps(document).encode(), mode=0o644)
        except OSError as exc:
            log.warning(
                "cannot keep the genesis report in %s (%s): the next start inspects it again",
                self.path,
                exc,
            )

    def _load(self) -> list[str] | None:
        """The kept grants if they are of this genesis file's bytes and read back, else None."""
        try:
            document = json.loads(self.path.read_bytes())
            grants = document["dev_key_grants"]
            if document["genesis_sha256"] != self.source.sha256.hex():
                return None
        except (OSError, KeyError, TypeError, ValueError):
            return None
        if not isinstance(grants, list) or not all(isinstance(g, str) for g in grants):
            return None
        return grants
