"""EIP-7702 authorities: who signed an authorization tuple.

Both the pool (which reserves authorities, `node.txpool`) and `eth_createAccessList` (which
leaves them out of the list, `node.chain.calls`) need it before execution; py-evm recovers
them only inside `process_set_code_authorizations`. The message is EIP-7702's,
MAGIC (0x05) || rlp([chain_id, address, nonce]), as py-evm builds it there.
"""

from __future__ import annotations

from collections.abc import Callable

import rlp
from eth.abc import SetCodeAuthorizationAPI, SignedTransactionAPI
from eth.vm.forks.prague.constants import MAGIC
from eth_keys import keys
from eth_keys.exceptions import BadSignature
from eth_typing import Address
from eth_utils import ValidationError

SET_CODE_TRANSACTION_TYPE = 4
AUTHORITY_NOT_PERMITTED = "authorization signer not permitted"
"""Why a block builder leaves out a set-code transaction naming a forbidden authority."""


def authority_of(auth: SetCodeAuthorizationAPI) -> Address | None:
    """The signer of `auth`, or None when its signature recovers no key (execution skips
    such an authorization, so it names no one)."""
    try:
        signature = keys.Signature(vrs=(auth.y_parity, auth.r, auth.s))
        message = MAGIC + rlp.encode([auth.chain_id, auth.address, auth.nonce])
        return Address(signature.recover_public_key_from_msg(message).to_canonical_address())
    except (BadSignature, ValidationError, ValueError, TypeError):
        return None


def authorities_of(tx: SignedTransactionAPI) -> tuple[Address, ...]:
    """The accounts a transaction's EIP-7702 authorizations were signed by (none for other
    types; a signature that recovers no key is skipped at execution, so it names no one)."""
    if tx.type_id != SET_CODE_TRANSACTION_TYPE:
        return ()
    found = (authority_of(auth) for auth in tx.authorization_list)
    return tuple(authority for authority in found if authority is not None)


def forbidden_authority(
    tx: SignedTransactionAPI, allowed: Callable[[bytes], bool]
) -> Address | None:
    """The first authority of `tx` that account permissioning does not allow, if any.

    An authorization is its signer acting on chain (its nonce moves, its code is set), so on a
    permissioned chain it is held to the sender's rule: at the pool and at block validation.
    """
    for authority in authorities_of(tx):
        if not allowed(authority):
            return authority
    return None
