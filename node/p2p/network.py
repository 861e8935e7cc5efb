"""The network file: which nodes exist, where they listen, and so who may connect.

`network.json` lists every node of a permissioned network by address with its p2p endpoint:
it is both this node's static peer list and its permissioned node list (until the on-chain
NodeRules contract replaces the latter). It is local configuration, not part of the genesis:
operators change it without changing the chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from eth_utils import to_canonical_address


class NetworkConfigError(ValueError):
    """A network file that cannot be used."""


@dataclass(frozen=True, slots=True)
class NetworkNode:
    address: bytes
    host: str
    p2p_port: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    nodes: tuple[NetworkNode, ...]

    @property
    def addresses(self) -> frozenset[bytes]:
        return frozenset(node.address for node in self.nodes)

    def peers_of(self, address: bytes) -> list[NetworkNode]:
        return [node for node in self.nodes if node.address != address]

    @classmethod
    def load(cls, path: Path) -> NetworkConfig:
        try:
            document = json.loads(path.read_text())
            nodes = tuple(
                NetworkNode(
                    address=to_canonical_address(entry["address"]),
                    host=str(entry.get("host", "127.0.0.1")),
                    p2p_port=int(entry["p2pPort"]),
                    name=str(entry.get("name", "")),
                )
                for entry in document["nodes"]
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NetworkConfigError(f"{path}: {exc}") from exc
        if not nodes:
            raise NetworkConfigError(f"{path}: no nodes listed")
        return cls(nodes)
