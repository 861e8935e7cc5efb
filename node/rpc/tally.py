"""`tally_` JSON-RPC methods: what an independent verifier needs that Ethereum's API lacks."""

from __future__ import annotations

import json
from typing import Any

from node.chain.chain import Chain
from node.rpc.dispatch import rpc_method


class TallyApi:
    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    @rpc_method("tally_getGenesis")
    def genesis(self) -> dict[str, Any]:
        """The genesis document this chain was made of (Besu-style JSON).

        A verifier rebuilds block 0 from it and compares hashes, so it need not trust it.
        """
        return json.loads(self.chain.genesis.dumps())
