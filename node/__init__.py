"""Tally node: execution, storage, consensus, p2p, txpool, permissioning, JSON-RPC, REST."""

import os

# py-evm hashes with whichever keccak backend eth-hash picks first; pysha3 is ~7x faster than
# the default, and the choice is made at first import, so it must be set before any eth import.
os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")

__version__ = "0.1.0"
