"""What the node knows of the bank: its contracts' addresses, roles, fee kinds and genesis
deployments (`contracts`), the decoding of their events (`event_decoding`), and the auditor
indexes built from those events in each block's batch (`indexer` writes the rows `indexes`
defines). The rest of the node is a generic QBFT EVM chain."""
