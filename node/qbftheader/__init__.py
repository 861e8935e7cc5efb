"""The QBFT block-header format, as Besu and GoQuorum define it: a leaf every layer may import.

`extra_data` encodes and decodes the five-item extraData list, `hashing` the on-chain and
commit-seal hashes and seal recovery, `tally` the validator vote tally a header chain implies,
`quorum` the one seal/message threshold, `verify` a sealed header's QBFT checks and `rules`
the `ConsensusRules` the chain is handed. Nothing here imports py-evm at run time (its types
only for checking), `node.chain` or `node.consensus`: the QBFT core and the chain both build on
it, neither on the other.
"""
