// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {WalletToken} from "./WalletToken.sol";

/// @title BatchPayout
/// @notice Pays many payees from one payer in a single all-or-nothing transaction (payroll,
///         refunds): if any leg fails (a frozen payee, an over-limit payment, funds running out)
///         nobody is paid.
/// @dev Each leg is a `transferFrom(payer, payee)` on the token, so the payer's own KYC limits
///      (per payment, daily), freezes and any fee on a flagged payee apply exactly as if the
///      payer had paid each payee directly. The contract never holds funds. Approve it for the
///      total plus any fees.
contract BatchPayout {
    /// @notice Bounds one batch's gas so it always fits a block.
    uint256 public constant MAX_PAYEES = 256;

    WalletToken public immutable token;
    uint256 public batchCount;

    event PayeePaid(uint256 indexed batchId, address indexed payee, uint256 amount);
    event BatchPaid(uint256 indexed batchId, address indexed payer, uint256 payees, uint256 total, bytes32 ref);

    error EmptyBatch();
    error TooManyPayees(uint256 count, uint256 max);
    error LengthMismatch(uint256 payees, uint256 amounts);
    error ZeroAmount(uint256 index);

    constructor(WalletToken token_) {
        token = token_;
    }

    /// @notice Pay `amounts[i]` to `payees[i]` for every i, or revert without paying anyone.
    function pay(address[] calldata payees, uint256[] calldata amounts, bytes32 ref) external returns (uint256 batchId) {
        uint256 n = payees.length;
        if (n == 0) revert EmptyBatch();
        if (n > MAX_PAYEES) revert TooManyPayees(n, MAX_PAYEES);
        if (amounts.length != n) revert LengthMismatch(n, amounts.length);
        batchId = ++batchCount;
        uint256 total;
        for (uint256 i = 0; i < n; ++i) {
            uint256 amount = amounts[i];
            if (amount == 0) revert ZeroAmount(i);
            token.transferFrom(msg.sender, payees[i], amount);
            total += amount;
            emit PayeePaid(batchId, payees[i], amount);
        }
        emit BatchPaid(batchId, msg.sender, n, total, ref);
    }
}
