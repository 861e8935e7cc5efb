// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccountRules, Role} from "./AccountRules.sol";
import {RoleGated} from "./RoleGated.sol";
import {WalletToken} from "./WalletToken.sol";

/// @title Netting
/// @notice Multilateral netting between enterprises: during a cycle each debtor records what it
///         owes whom; at the end of the cycle only each party's net position moves (net debtors
///         pay in, net creditors are paid out), so many gross obligations settle with few
///         transfers and total value is conserved.
/// @dev The settler (an issuer, as clearing operator, or any party of the cycle) submits the
///      netting result, party by party; the contract settles it only if it balances to zero and
///      matches, party for party, the positions recorded from the obligations. That makes the
///      settlement instruction auditable against its own cycle and refuses anything else. The
///      cycle settles all or nothing: a net debtor without the funds (or allowance) blocks it.
///      Netting must be an allowed `System` account in AccountRules (it receives and pays out).
contract Netting is RoleGated {
    /// @notice Bounds a cycle's settlement gas so it always fits a block.
    uint256 public constant MAX_PARTIES = 64;

    WalletToken public immutable token;
    /// @notice The open cycle: obligations recorded now belong to it.
    uint256 public cycle = 1;
    uint256 public obligationCount;

    mapping(uint256 => address[]) private _parties;
    mapping(uint256 => mapping(address => int256)) private _net;
    mapping(uint256 => mapping(address => bool)) private _isParty;
    mapping(uint256 => uint256) private _gross;

    event ObligationRecorded(
        uint256 indexed cycle, uint256 indexed id, address indexed debtor, address creditor, uint256 amount, bytes32 ref
    );
    event NetSettled(uint256 indexed cycle, address indexed party, int256 net);
    event CycleSettled(uint256 indexed cycle, uint256 parties, uint256 gross, uint256 netMoved);

    error ZeroAmount();
    error SelfObligation(address party);
    error ExternalParty(address party);
    error TooManyParties(uint256 max);
    error EmptyCycle(uint256 cycle);
    error NotSettler(address caller);
    error PartyCountMismatch(uint256 expected, uint256 given);
    error LengthMismatch(uint256 parties, uint256 nets);
    /// @notice The submitted net positions do not sum to zero.
    error CycleUnbalanced(int256 sum);
    error NetMismatch(address party, int256 recorded, int256 submitted);
    error PartyLacksFunds(address party, uint256 needed, uint256 available);
    error PartyLacksAllowance(address party, uint256 needed, uint256 allowance);

    constructor(AccountRules rules, WalletToken token_) RoleGated(rules) {
        token = token_;
    }

    /// @notice The caller (an enterprise) owes `creditor` (an enterprise) `amount`.
    function record(address creditor, uint256 amount, bytes32 ref) external onlyRole(Role.Enterprise) returns (uint256 id) {
        if (amount == 0) revert ZeroAmount();
        if (creditor == msg.sender) revert SelfObligation(creditor);
        Role creditorRole = accountRules.roleOf(creditor);
        if (creditorRole != Role.Enterprise) revert UnauthorizedRole(creditor, creditorRole);
        if (token.recipientKind(creditor) != WalletToken.Kind.Internal) revert ExternalParty(creditor);
        uint256 c = cycle;
        _join(c, msg.sender);
        _join(c, creditor);
        _net[c][msg.sender] -= int256(amount);
        _net[c][creditor] += int256(amount);
        _gross[c] += amount;
        id = ++obligationCount;
        emit ObligationRecorded(c, id, msg.sender, creditor, amount, ref);
    }

    /// @notice The open cycle's net positions as recorded, in the order parties joined.
    function netPositions() external view returns (address[] memory parties, int256[] memory nets) {
        uint256 c = cycle;
        parties = _parties[c];
        nets = new int256[](parties.length);
        for (uint256 i = 0; i < parties.length; ++i) {
            nets[i] = _net[c][parties[i]];
        }
    }

    /// @notice Gross value of obligations recorded in the open cycle.
    function grossValue() external view returns (uint256) {
        return _gross[cycle];
    }

    /// @notice Settle the open cycle with the submitted net positions (see contract notes) and
    ///         open the next one. Net debtors must have approved this contract.
    function settleCycle(address[] calldata parties, int256[] calldata nets) external {
        uint256 c = cycle;
        uint256 n = _parties[c].length;
        if (n == 0) revert EmptyCycle(c);
        if (!_isParty[c][msg.sender]) {
            Role has = accountRules.roleOf(msg.sender);
            if (has != Role.Issuer) revert NotSettler(msg.sender);
        }
        if (parties.length != nets.length) revert LengthMismatch(parties.length, nets.length);
        if (parties.length != n) revert PartyCountMismatch(n, parties.length);
        int256 sum;
        for (uint256 i = 0; i < n; ++i) {
            sum += nets[i];
        }
        if (sum != 0) revert CycleUnbalanced(sum);
        // Each recorded position is consumed once it matches, so a party listed twice fails.
        for (uint256 i = 0; i < n; ++i) {
            int256 recorded = _net[c][parties[i]];
            if (!_isParty[c][parties[i]] || recorded != nets[i]) revert NetMismatch(parties[i], recorded, nets[i]);
            _net[c][parties[i]] = 0;
        }
        uint256 moved;
        for (uint256 i = 0; i < n; ++i) {
            if (nets[i] >= 0) continue;
            address p = parties[i];
            uint256 owed = uint256(-nets[i]);
            uint256 available = token.availableBalanceOf(p);
            if (available < owed) revert PartyLacksFunds(p, owed, available);
            uint256 allowed = token.allowance(p, address(this));
            if (allowed < owed) revert PartyLacksAllowance(p, owed, allowed);
            token.transferFrom(p, address(this), owed);
            moved += owed;
        }
        for (uint256 i = 0; i < n; ++i) {
            if (nets[i] > 0) token.transfer(parties[i], uint256(nets[i]));
            emit NetSettled(c, parties[i], nets[i]);
        }
        emit CycleSettled(c, n, _gross[c], moved);
        cycle = c + 1;
    }

    function _join(uint256 c, address party) private {
        if (_isParty[c][party]) return;
        if (_parties[c].length >= MAX_PARTIES) revert TooManyParties(MAX_PARTIES);
        _isParty[c][party] = true;
        _parties[c].push(party);
    }
}
