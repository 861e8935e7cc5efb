// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccountRules, Role} from "./AccountRules.sol";
import {RoleGated} from "./RoleGated.sol";

/// @title Points
/// @notice Loyalty points customers earn on payments, at a rate the bank sets, and redeem with
///         the bank. Not transferable unless the bank turns transfers on.
/// @dev A plain ledger rather than an ERC-20: points are not money and wallets should not offer
///      to send them. Awards come from the wallet token (on a customer's payment) or from an
///      issuer (promotions, corrections); a redemption burns points and emits the reference the
///      bank settles against off chain.
contract Points is RoleGated {
    /// @notice Rates are in basis points of the payment amount (in the token's smallest unit).
    uint256 public constant MAX_RATE_BPS = 10_000;

    /// @notice The wallet token allowed to award points on payments.
    address public immutable token;
    uint16 public rateBps;
    bool public transferable;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;

    event Awarded(address indexed account, uint256 paymentAmount, uint256 points);
    event Redeemed(address indexed account, uint256 points, bytes32 indexed ref);
    event Transferred(address indexed from, address indexed to, uint256 points);
    event RateSet(uint16 rateBps);
    event TransferableSet(bool transferable);

    error NotAwarder(address caller);
    error InvalidRate(uint256 rateBps);
    error InsufficientPoints(address account, uint256 balance, uint256 needed);
    error TransfersDisabled();
    error AccountNotAllowed(address account);
    error ZeroAmount();

    /// @param rules AccountRules (roles)
    /// @param token_ the WalletToken that awards points on payments
    /// @param rateBps_ initial earning rate in basis points of each payment
    constructor(AccountRules rules, address token_, uint16 rateBps_) RoleGated(rules) {
        token = token_;
        _setRate(rateBps_);
    }

    /// @notice Award points for a payment of `paymentAmount`: by the token, or an issuer.
    function award(address account, uint256 paymentAmount) external returns (uint256 points) {
        if (msg.sender != token) {
            Role has = accountRules.roleOf(msg.sender);
            if (has != Role.Issuer) revert NotAwarder(msg.sender);
        }
        points = (paymentAmount * rateBps) / 10_000;
        if (points == 0) return 0;
        balanceOf[account] += points;
        totalSupply += points;
        emit Awarded(account, paymentAmount, points);
    }

    /// @notice Redeem points; `ref` identifies what the bank gives in return.
    function redeem(uint256 points, bytes32 ref) external {
        if (points == 0) revert ZeroAmount();
        uint256 balance = balanceOf[msg.sender];
        if (balance < points) revert InsufficientPoints(msg.sender, balance, points);
        balanceOf[msg.sender] = balance - points;
        totalSupply -= points;
        emit Redeemed(msg.sender, points, ref);
    }

    /// @notice Give points to another allowed account, only while the bank allows it.
    function transfer(address to, uint256 points) external {
        if (!transferable) revert TransfersDisabled();
        if (!accountRules.isAllowed(to)) revert AccountNotAllowed(to);
        if (points == 0) revert ZeroAmount();
        uint256 balance = balanceOf[msg.sender];
        if (balance < points) revert InsufficientPoints(msg.sender, balance, points);
        balanceOf[msg.sender] = balance - points;
        balanceOf[to] += points;
        emit Transferred(msg.sender, to, points);
    }

    function setRate(uint16 rateBps_) external onlyGroupOr(Role.Issuer) {
        _setRate(rateBps_);
    }

    function setTransferable(bool on) external onlyGroupOr(Role.Admin) {
        transferable = on;
        emit TransferableSet(on);
    }

    function _setRate(uint16 rateBps_) private {
        if (rateBps_ > MAX_RATE_BPS) revert InvalidRate(rateBps_);
        rateBps = rateBps_;
        emit RateSet(rateBps_);
    }
}
