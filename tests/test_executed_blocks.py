"""`ExecutedBlocks.to_stage`: each kept execution is handed to `Chain.stage` once."""

from __future__ import annotations

from node.consensus.executed import ExecutedBlocks
from tests.test_chain import EXTRA, VALIDATOR, new_chain, transfers


def test_each_kept_block_is_handed_out_for_staging_once() -> None:
    chain = new_chain()
    first = chain.build(transfers(1), timestamp=7, coinbase=VALIDATOR, extra_data=EXTRA)
    again = chain.build(transfers(1), timestamp=7, coinbase=VALIDATOR, extra_data=EXTRA)
    other = chain.build(transfers(2), timestamp=7, coinbase=VALIDATOR, extra_data=EXTRA)
    executed = ExecutedBlocks(limit=2)
    executed.keep(b"a", first)
    assert executed.to_stage() == [first]
    assert executed.to_stage() == []
    executed.keep(b"a", again)  # a new execution under the same hash is new work
    executed.keep(b"b", other)
    assert executed.to_stage() == [again, other]
    executed.keep(b"c", first)  # over the limit: "a" goes
    assert executed.get(b"a") is None and executed.to_stage() == [first]
    assert executed.pop(b"b") is other
    executed.keep(b"b", other)
    assert executed.to_stage() == [other]
    executed.clear()
    executed.keep(b"c", first)
    assert executed.to_stage() == [first]
