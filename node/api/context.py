"""Everything the REST handlers read from: the chain reader the app factory is given.

Handlers reach it through `Depends(context)`; nothing in `node.api` reaches into the node
otherwise, so the API's view of the node is exactly this object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
from node.query.callpool import CallPool
from node.query.reader import ChainReader
from node.query.relay import Relay
from node.txpool.pool import TxPool


@dataclass
class ApiContext:
    """The node as the REST API sees it.

    `reader` and `relay` are the node's read side and transaction relay, the ones JSON-RPC
    uses too; `call_pool` runs contract reads and traces off the loop; `permissioned` says
    whether AccountRules gates the chain, which decides the role of a wallet AccountRules does
    not know (customer on a dev chain, refused otherwise).
    """

    chain: Chain
    pool: TxPool
    calls: CallExecutor
    call_pool: CallPool
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
    events: EventDecoder = field(default_factory=EventDecoder)
    reader: ChainReader = field(init=False)
    relay: Relay = field(init=False)
    index: ChainIndex = field(init=False)
    bank: BankReader = field(init=False)

    def __post_init__(self) -> None:
        self.reader = ChainReader(self.chain)
        self.relay = Relay(self.chain, self.pool)
        self.index = ChainIndex(self.chain.store.store)
        self.bank = BankReader(self.calls, self.call_pool)


def context(request: Request) -> ApiContext:
    """FastAPI dependency: the context the app was built with."""
    return request.app.state.context
