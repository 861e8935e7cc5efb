"""Transaction pool: admission of raw signed transactions and their ordering for blocks.

`errors` (the rejection tree), `transaction` (`PooledTransaction`), `admission` (stateless and
account checks), `account` (one sender's pending/queued split) and `pool` (`TxPool`).
"""

from node.txpool.admission import AccountStateReader, AdmissionRules, admit
from node.txpool.errors import TxPoolError
from node.txpool.pool import PoolConfig, TxPool
from node.txpool.transaction import PooledTransaction

__all__ = [
    "AccountStateReader",
    "AdmissionRules",
    "PoolConfig",
    "PooledTransaction",
    "TxPool",
    "TxPoolError",
    "admit",
]
