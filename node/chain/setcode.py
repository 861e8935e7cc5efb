"""EIP-7702 authorities: who signed an authorization tuple.

Both the pool (which reserves authorities, `node.txpool`) and `eth_createAccessList` (which
leaves them out of the list, `node.chain.calls`) need it before execution; py-evm recovers
them only inside `process_set_code_authorizations`. The message is EIP-7702's,
MAGIC (0x05) || rlp([chain_id, address, nonce]), as py-evm builds it there.
"""

from __future__ import annotations

import rlp
from eth.vm.forks.prague.constants import MAGIC
from eth.vm.forks.prague.transactions import Authorization
from eth_keys import keys
from eth_keys.exceptions import BadSignature
from eth_typing import Address
from eth_utils import ValidationError


def authority_of(auth: Authorization) -> Address | None:
    """The signer of `auth`, or None when its signature recovers no key (execution skips
    such an authorization, so it names no one)."""
    try:
        signature = keys.Signature(vrs=(auth.y_parity, auth.r, auth.s))
        message = MAGIC + rlp.encode([auth.chain_id, auth.address, auth.nonce])
        return Address(signature.recover_public_key_from_msg(message).to_canonical_address())
    except (BadSignature, ValidationError, ValueError, TypeError):
        return None
