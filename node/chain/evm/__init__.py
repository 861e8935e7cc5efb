"""Where Tally reaches into py-evm: every override, copy and private name, and nothing else.

- `interpreter`: Prague's computation with a leaner dispatch loop and cached jump analysis.
- `state_db`: the account database writing storage and account tries once per block.
- `vm`: the VM, state and transaction executor the block executor drives.
- `tracing`: the computation that reports frames and opcode steps to a tracer.
- `internals`: public names for the private py-evm attributes and helpers others read.
- `upstream`: each upstream function mirrored here, with the sha256 of its source, and the
  private names read (`tests/test_evm_fence.py` checks both against the installed py-evm).

The rest of the node uses these modules' public names only.
"""
