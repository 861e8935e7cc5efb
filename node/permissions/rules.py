"""On-chain permissioning as Besu does it: the rules live in contracts, the node obeys them.

`AccountRules.isAllowed(address)` decides who may transact and `NodeRules.nodes()` who may
connect. The node reads them through read-only calls against a given block's state: the
head for pool admission and peer links, the parent for a block being built or validated (so
a node syncing from genesis accepts history made before an account was removed).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import eth_abi
from eth.abc import BlockHeaderAPI
from eth_utils import function_signature_to_4byte_selector

from node.chain.calls import CallError, CallExecutor, CallRequest

ACCOUNT_RULES = "accountRules"
NODE_RULES = "nodeRules"
_IS_ALLOWED = function_signature_to_4byte_selector("isAllowed(address)")
_NODES = function_signature_to_4byte_selector("nodes()")
_READER = b"\x00" * 20

SenderCheck = Callable[[bytes], bool]


class PermissionRules:
    """Reads the permission contracts named in the genesis config."""

    def __init__(
        self, calls: CallExecutor, account_rules: bytes | None, node_rules: bytes | None
    ) -> None:
        self.calls = calls
        self.account_rules = account_rules
        self.node_rules = node_rules
        self._checks: OrderedDict[bytes, SenderCheck] = OrderedDict()

    def sender_check(self, header: BlockHeaderAPI) -> SenderCheck | None:
        """Whether an account may transact, as of `header` (memoised per account).

        One checker per state root, shared by pool admission at the head and the building
        or validation of the head's child, so each sender costs one call per block.
        """
        if self.account_rules is None:
            return None
        check = self._checks.get(header.state_root)
        if check is None:
            check = self._checks[header.state_root] = self._new_check(header, self.account_rules)
            while len(self._checks) > 8:
                self._checks.popitem(last=False)
        return check

    def _new_check(self, header: BlockHeaderAPI, rules: bytes) -> SenderCheck:
        known: dict[bytes, bool] = {}

        def allowed(sender: bytes) -> bool:
            verdict = known.get(sender)
            if verdict is None:
                data = _IS_ALLOWED + eth_abi.encode(["address"], ["0x" + sender.hex()])
                verdict = known[sender] = self._call_bool(header, rules, data)
            return verdict

        return allowed

    def allowed_nodes(self, header: BlockHeaderAPI) -> frozenset[bytes] | None:
        """The node addresses NodeRules lists as of `header` (None: no node rules)."""
        if self.node_rules is None:
            return None
        try:
            computation = self.calls.call(
                CallRequest(_READER, self.node_rules, _NODES, 0, None), header
            )
        except CallError:
            return frozenset()
        if computation.is_error:
            return frozenset()
        (nodes,) = eth_abi.decode(["address[]"], computation.output)
        return frozenset(bytes.fromhex(node[2:]) for node in nodes)

    def _call_bool(self, header: BlockHeaderAPI, contract: bytes, data: bytes) -> bool:
        """A failed or malformed answer denies: permissioning fails closed."""
        try:
            computation = self.calls.call(CallRequest(_READER, contract, data, 0, None), header)
        except CallError:
            return False
        if computation.is_error or len(computation.output) != 32:
            return False
        return int.from_bytes(computation.output, "big") == 1
