"""Everything the REST handlers read from: the chain reader the app factory is given.

Handlers reach it through `Depends(context)`; nothing in `node.api` reaches into the node
otherwise, so the API's view of the node is exactly this object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from eth.abc import BlockHeaderAPI
from fastapi import Request

from node.api.bank import BankReader
from node.api.credentials import ApiKeyStore
from node.api.merchants import MerchantRegistry
from node.api.ratelimit import RateLimits
from node.api.signin import SignIn
from node.api.streams.manager import StreamManager
from node.chain.calls import CallExecutor
from node.chain.chain import Chain
from node.domain.event_decoding import EventDecoder
from node.domain.indexes import ChainIndex
from node.metrics import NodeMetrics
from node.rpc.eth import EthApi
from node.rpc.proofs import ProofsApi
from node.txpool.pool import TxPool


@dataclass
class ApiContext:
    """The node as the REST API sees it.

    `eth` and `proofs` are the JSON-RPC namespaces whose logic the API reuses (transaction
    relay and `eth_getProof`); `permissioned` says whether AccountRules gates the chain, which
    decides the role of a wallet AccountRules does not know (customer on a dev chain, refused
    otherwise).
    """

    chain: Chain
    pool: TxPool
    calls: CallExecutor
    eth: EthApi
    proofs: ProofsApi
    keys: ApiKeyStore
    merchants: MerchantRegistry
    signin: SignIn
    limiter: RateLimits
    permissioned: bool = False
    peers: Callable[[], int] = lambda: 0
    syncing: Callable[[], bool] = lambda: False
    metrics: NodeMetrics | None = None
    max_body_bytes: int = 512 * 1024
    streams: StreamManager | None = None
    index: ChainIndex = field(init=False)
    bank: BankReader = field(init=False)
    events: EventDecoder = field(init=False)

    def __post_init__(self) -> None:
        self.index = ChainIndex(self.chain.store.store)
        self.bank = BankReader(self.calls, self.eth.call_pool)
        self.events = EventDecoder()

    def head(self) -> tuple[BlockHeaderAPI, bytes]:
        """The head header and its hash, read consistently while blocks commit alongside."""
        return self.chain.committed_head()


def context(request: Request) -> ApiContext:
    """FastAPI dependency: the context the app was built with."""
    return request.app.state.context
