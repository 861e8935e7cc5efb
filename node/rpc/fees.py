"""`eth_feeHistory`: base fees, gas use and tip percentiles of recent blocks (execution-apis).

Wallets size `maxFeePerGas` / `maxPriorityFeePerGas` from it, so the answer must have the
spec's shape even where Tally's numbers are trivial: on a zero-base-fee network the base fees
(including the next block's) are 0 and tips are what senders chose to pay. Tally has no blobs,
so the blob fields are zeros. Reward percentiles follow geth: each block's transactions sorted
by effective tip, and a percentile picks the tip at which that share of the block's gas is used.
"""

from __future__ import annotations

from typing import Any

from eth.abc import BlockHeaderAPI

from node.chain.chain import Chain
from node.qbftheader.hashing import onchain_hash
from node.rpc import params as p
from node.rpc import views
from node.rpc.dispatch import rpc_method
from node.rpc.errors import InvalidParams, ServerError

MAX_BLOCK_COUNT = 1_024
MAX_PERCENTILES = 100


class FeesApi:
    """`eth_feeHistory` from headers and receipt records (no extra index is kept)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.store = chain.store

    @rpc_method("eth_feeHistory", 2, 3)
    def fee_history(self, block_count: Any, newest: Any, percentiles: Any) -> dict[str, Any]:
        count = min(p.quantity(block_count, "blockCount"), MAX_BLOCK_COUNT)
        wanted = _percentiles(percentiles)
        head = self.chain.head
        newest_number = self._newest(newest, head.block_number)
        if count == 0:
            return {"oldestBlock": "0x0", "baseFeePerGas": [], "gasUsedRatio": []}
        oldest = max(0, newest_number - count + 1)
        base_fees: list[str] = []
        ratios: list[float] = []
        rewards: list[list[str]] = []
        header = head
        for number in range(oldest, newest_number + 1):
            found = self.chain.header_by_number(number)
            if found is None:
                raise ServerError(f"header not found: block {number}")
            header = found
            base_fees.append(views.hexq(header.base_fee_per_gas or 0))
            ratios.append(header.gas_used / header.gas_limit if header.gas_limit else 0.0)
            if wanted is not None:
                rewards.append([views.hexq(tip) for tip in self._rewards(header, wanted)])
        base_fees.append(views.hexq(self.chain.child_base_fee(header)))
        result: dict[str, Any] = {
            "oldestBlock": views.hexq(oldest),
            "baseFeePerGas": base_fees,
            "gasUsedRatio": ratios,
            "baseFeePerBlobGas": ["0x0"] * len(base_fees),
            "blobGasUsedRatio": [0.0] * len(ratios),
        }
        if wanted is not None:
            result["reward"] = rewards
        return result

    def _newest(self, value: Any, head: int) -> int:
        which = p.block_tag(value)
        if isinstance(which, bytes):
            header = self.chain.header_by_hash(which)
            if header is None:
                raise ServerError("header not found")
            return header.block_number
        if isinstance(which, int):
            if which > head:
                raise ServerError(f"request beyond head block: requested {which}, head {head}")
            return which
        return 0 if which == "earliest" else head

    def _rewards(self, header: BlockHeaderAPI, percentiles: list[float]) -> list[int]:
        """geth's algorithm: tips sorted ascending, weighted by each transaction's gas used."""
        tips: list[tuple[int, int]] = []
        for tx_hash in self.store.block_tx_hashes(onchain_hash(header)):
            receipt = self.store.receipt(tx_hash)
            if receipt is not None:
                tip = max(0, receipt.effective_gas_price - (header.base_fee_per_gas or 0))
                tips.append((tip, receipt.gas_used))
        if not tips:
            return [0] * len(percentiles)
        tips.sort()
        rewards = []
        index = 0
        gas_so_far = tips[0][1]
        for percentile in percentiles:
            threshold = int(header.gas_used * percentile / 100)
            while gas_so_far < threshold and index < len(tips) - 1:
                index += 1
                gas_so_far += tips[index][1]
            rewards.append(tips[index][0])
        return rewards


def _percentiles(value: Any) -> list[float] | None:
    """Reward percentiles: numbers in [0, 100], strictly increasing (geth's rule)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidParams("invalid rewardPercentiles: expected a list of numbers")
    if len(value) > MAX_PERCENTILES:
        raise InvalidParams(f"too many reward percentiles (max {MAX_PERCENTILES})")
    result: list[float] = []
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise InvalidParams(f"invalid reward percentile: #{index} is not a number")
        if not 0 <= item <= 100:
            raise InvalidParams(f"invalid reward percentile: {item}")
        if result and item <= result[-1]:
            raise InvalidParams(
                f"invalid reward percentile: #{index - 1}:{result[-1]} >= #{index}:{item}"
            )
        result.append(float(item))
    return result
