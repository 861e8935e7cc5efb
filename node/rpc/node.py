"""Methods about this node rather than the chain: peers, sync status, node identity.

`admin_` methods name peers' and this node's network addresses: admin listener only, as geth's.
"""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

from node.chain.chain import Chain
from node.consensus.sync import BlockSync
from node.p2p.host import P2PHost
from node.rpc.dispatch import rpc_method


class NodeApi:
    def __init__(self, p2p: P2PHost | None, sync: BlockSync | None, chain: Chain) -> None:
        self.p2p = p2p
        self.sync = sync
        self.chain = chain

    @rpc_method("net_peerCount")
    def peer_count(self) -> str:
        return hex(self.p2p.peer_count if self.p2p is not None else 0)

    @rpc_method("admin_peers", admin=True)
    def peers(self) -> list[dict[str, Any]]:
        return [] if self.p2p is None else [info.as_json() for info in self.p2p.peers()]

    @rpc_method("admin_nodeInfo", admin=True)
    def node_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"protocols": {"tally": {"network": self.chain.chain_id}}}
        if self.p2p is not None:
            info["address"] = to_checksum_address(self.p2p.address)
            info["ports"] = {"listener": self.p2p.listen_port}
        return info

    @rpc_method("eth_syncing")
    def syncing(self) -> bool | dict[str, str]:
        if self.sync is None or not self.sync.is_syncing():
            return False
        return {
            "startingBlock": "0x0",
            "currentBlock": hex(self.chain.head.block_number),
            "highestBlock": hex(self.sync.highest_known),
        }
