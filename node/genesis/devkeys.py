"""The well-known dev keys must hold nothing on a real network.

The ten accounts of the dev mnemonic (`node.chain.genesis.dev_accounts`, anvil's and Hardhat's)
have public private keys: a genesis that funds one, lists one as a validator or node, or gives
one a role in the bank's contracts hands that power to anyone. `tally run` refuses such a
genesis on any chain but the dev chain unless told `--allow-dev-keys`.
"""

from __future__ import annotations

from functools import cache

from node.chain.genesis import DEV_CHAIN_ID, Genesis, dev_accounts
from node.genesis.report import GenesisReport


@cache
def dev_addresses() -> dict[str, int]:
    """Checksummed address of each dev account, to its index in the mnemonic."""
    return {account.address: index for index, account in enumerate(dev_accounts())}


def dev_key_grants(report: GenesisReport) -> list[str]:
    """Each grant to a dev key, as `0xADDR (dev account N): what`; empty when there is none."""
    known = dev_addresses()
    return [
        f"{address} (dev account {known[address]}): {what}"
        for address, what in report.grants()
        if address in known
    ]


def dev_key_refusal(report: GenesisReport) -> str | None:
    """Why a genesis on a chain other than the dev chain must not run as it is, or None."""
    if report.chain_id == DEV_CHAIN_ID:
        return None
    return grants_refusal(dev_key_grants(report))


def grants_refusal(grants: list[str]) -> str | None:
    """The refusal of a non-dev genesis making these `dev_key_grants`, or None if none."""
    if not grants:
        return None
    return (
        "the genesis gives well-known dev keys (their private keys are public) "
        f"{'; '.join(grants)}; pass --allow-dev-keys to accept that"
    )


def unpermissioned_refusal(genesis: Genesis) -> str | None:
    """A genesis outside the dev chain that enforces no permissioning, or None.

    Permissioning is a consensus rule (a block with a forbidden sender is invalid), so it is
    the genesis's to set, the same on every node, never a node's own switch; a node only
    declines to run a real network without it unless told `--allow-unpermissioned`.
    """
    if genesis.chain_id == DEV_CHAIN_ID or genesis.permissions:
        return None
    return (
        f"chain {genesis.chain_id} is not the dev chain and its genesis enforces no "
        "permissioning (permissioned = false); pass --allow-unpermissioned to run it anyway"
    )
