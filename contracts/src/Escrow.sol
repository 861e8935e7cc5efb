// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {WalletToken} from "./WalletToken.sol";

/// @title Escrow
/// @notice A payer funds a deal up front in WalletToken; each milestone is paid to the payee
///         when the payer releases it; either party can raise a dispute, which the deal's
///         arbiter settles by splitting what is left; after the deadline the unreleased rest
///         can be refunded to the payer.
/// @dev After the deadline a deal can only be refunded (or, if disputed, resolved): the payer
///      cannot release late and the payee cannot dispute late, so the timeline is unambiguous.
///      The escrow holds funds for many deals and must be an allowed `System` account in
///      AccountRules; it refuses payees flagged external so no payout ever carries a fee.
contract Escrow {
    enum State {
        None,
        Active,
        Disputed,
        Closed
    }

    struct Deal {
        address payer;
        address payee;
        address arbiter;
        uint64 deadline;
        State state;
        uint32 releasedMask; // bit i set: milestone i paid
        uint256 remaining;
        uint256[] milestones;
    }

    uint256 public constant MAX_MILESTONES = 32;

    WalletToken public immutable token;
    uint256 public dealCount;
    mapping(uint256 => Deal) private _deals;

    event EscrowOpened(
        uint256 indexed id,
        address indexed payer,
        address indexed payee,
        address arbiter,
        uint256 total,
        uint64 deadline,
        bytes32 ref
    );
    event MilestoneReleased(uint256 indexed id, uint256 index, uint256 amount);
    event Disputed(uint256 indexed id, address indexed by);
    event Resolved(uint256 indexed id, uint256 toPayee, uint256 toPayer);
    event Refunded(uint256 indexed id, uint256 amount);
    event EscrowClosed(uint256 indexed id);

    error NoMilestones();
    error TooManyMilestones(uint256 count, uint256 max);
    error ZeroAmount(uint256 index);
    error InvalidParty(address account);
    error ExternalPayee(address payee);
    error DeadlineInPast(uint64 deadline);
    error UnknownDeal(uint256 id);
    error WrongState(uint256 id, State state);
    error NotPayer(uint256 id, address caller);
    error NotParty(uint256 id, address caller);
    error NotArbiter(uint256 id, address caller);
    error DeadlinePassed(uint256 id, uint64 deadline);
    error DeadlineNotReached(uint256 id, uint64 deadline);
    error InvalidMilestone(uint256 id, uint256 index);
    error MilestoneAlreadyReleased(uint256 id, uint256 index);
    error SplitTooLarge(uint256 id, uint256 toPayee, uint256 remaining);

    constructor(WalletToken token_) {
        token = token_;
    }

    /// @notice Open a deal and pull its total from the caller (approve the escrow first).
    function open(address payee, address arbiter, uint256[] calldata milestones, uint64 deadline, bytes32 ref)
        external
        returns (uint256 id)
    {
        uint256 n = milestones.length;
        if (n == 0) revert NoMilestones();
        if (n > MAX_MILESTONES) revert TooManyMilestones(n, MAX_MILESTONES);
        if (payee == address(0) || payee == msg.sender) revert InvalidParty(payee);
        if (arbiter == address(0) || arbiter == msg.sender || arbiter == payee) revert InvalidParty(arbiter);
        if (token.recipientKind(payee) != WalletToken.Kind.Internal) revert ExternalPayee(payee);
        if (deadline <= block.timestamp) revert DeadlineInPast(deadline);
        uint256 total;
        for (uint256 i = 0; i < n; ++i) {
            if (milestones[i] == 0) revert ZeroAmount(i);
            total += milestones[i];
        }
        id = ++dealCount;
        Deal storage d = _deals[id];
        d.payer = msg.sender;
        d.payee = payee;
        d.arbiter = arbiter;
        d.deadline = deadline;
        d.state = State.Active;
        d.remaining = total;
        d.milestones = milestones;
        emit EscrowOpened(id, msg.sender, payee, arbiter, total, deadline, ref);
        token.transferFrom(msg.sender, address(this), total);
    }

    /// @notice The payer accepts milestone `index`: its amount goes to the payee.
    function release(uint256 id, uint256 index) external {
        Deal storage d = _deal(id);
        if (msg.sender != d.payer) revert NotPayer(id, msg.sender);
        if (d.state != State.Active) revert WrongState(id, d.state);
        if (block.timestamp > d.deadline) revert DeadlinePassed(id, d.deadline);
        if (index >= d.milestones.length) revert InvalidMilestone(id, index);
        uint32 bit = uint32(1) << uint32(index);
        if (d.releasedMask & bit != 0) revert MilestoneAlreadyReleased(id, index);
        d.releasedMask |= bit;
        uint256 amount = d.milestones[index];
        d.remaining -= amount;
        emit MilestoneReleased(id, index, amount);
        if (d.remaining == 0) {
            d.state = State.Closed;
            emit EscrowClosed(id);
        }
        token.transfer(d.payee, amount);
    }

    /// @notice Payer or payee stops releases and refunds until the arbiter resolves the deal.
    function dispute(uint256 id) external {
        Deal storage d = _deal(id);
        if (msg.sender != d.payer && msg.sender != d.payee) revert NotParty(id, msg.sender);
        if (d.state != State.Active) revert WrongState(id, d.state);
        if (block.timestamp > d.deadline) revert DeadlinePassed(id, d.deadline);
        d.state = State.Disputed;
        emit Disputed(id, msg.sender);
    }

    /// @notice The arbiter splits what is left: `toPayee` to the payee, the rest to the payer.
    function resolve(uint256 id, uint256 toPayee) external {
        Deal storage d = _deal(id);
        if (msg.sender != d.arbiter) revert NotArbiter(id, msg.sender);
        if (d.state != State.Disputed) revert WrongState(id, d.state);
        uint256 remaining = d.remaining;
        if (toPayee > remaining) revert SplitTooLarge(id, toPayee, remaining);
        d.remaining = 0;
        d.state = State.Closed;
        emit Resolved(id, toPayee, remaining - toPayee);
        emit EscrowClosed(id);
        if (toPayee > 0) token.transfer(d.payee, toPayee);
        if (remaining > toPayee) token.transfer(d.payer, remaining - toPayee);
    }

    /// @notice After the deadline, return the unreleased rest to the payer (anyone may call).
    function refund(uint256 id) external {
        Deal storage d = _deal(id);
        if (d.state != State.Active) revert WrongState(id, d.state);
        if (block.timestamp <= d.deadline) revert DeadlineNotReached(id, d.deadline);
        uint256 amount = d.remaining;
        d.remaining = 0;
        d.state = State.Closed;
        emit Refunded(id, amount);
        emit EscrowClosed(id);
        token.transfer(d.payer, amount);
    }

    function deal(uint256 id)
        external
        view
        returns (
            address payer,
            address payee,
            address arbiter,
            uint64 deadline,
            State state,
            uint256 remaining,
            uint256[] memory milestones,
            uint32 releasedMask
        )
    {
        Deal storage d = _deal(id);
        return (d.payer, d.payee, d.arbiter, d.deadline, d.state, d.remaining, d.milestones, d.releasedMask);
    }

    function _deal(uint256 id) private view returns (Deal storage d) {
        d = _deals[id];
        if (d.state == State.None) revert UnknownDeal(id);
    }
}
