"""On-chain account and node permissioning, enforced by the node."""
