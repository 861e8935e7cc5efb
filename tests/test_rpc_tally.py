"""`tally_getGenesis`: the document a verifier rebuilds block 0 from."""

from __future__ import annotations

from node.chain.genesis import Genesis
from node.qbftheader.hashing import onchain_hash
from node.storage.chainstore import ChainStore
from node.storage.store import MemoryStore
from tests.conftest import NodeProcess


def test_genesis_document_rebuilds_block_zero(shared_node: NodeProcess) -> None:
    document = shared_node.rpc("tally_getGenesis")
    genesis = Genesis.from_json(document)
    header = genesis.header(ChainStore(MemoryStore()).new_batch())
    block_zero = shared_node.rpc("eth_getBlockByNumber", ["0x0", False])
    assert "0x" + onchain_hash(header).hex() == block_zero["hash"]
    assert "0x" + header.state_root.hex() == block_zero["stateRoot"]
