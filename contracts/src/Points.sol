// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccountRules, Role} from "./AccountRules.sol";
import {RoleGated} from "./RoleGated.sol";
import {WalletToken} from "./WalletToken.sol";

/// @title Points
/// @notice Loyalty points customers earn on payments, at the rate the wallet token applies,
///         and redeem with the bank. Not transferable unless the bank turns transfers on.
/// @dev A plain ledger rather than an ERC-20: points are not money and wallets should not offer
///      to send them. Points earned on payments accrue inside the wallet token (in the payer's
///      holder word, so a payment makes no call here: see WalletToken) and count in
///      `balanceOf` at once; this ledger claims them (`settle`) before a holder redeems or
///      transfers. An issuer may also award points here directly (promotions, corrections); a
///      redemption burns points and emits the reference the bank settles against off chain.
contract Points is RoleGated {
    /// @notice The wallet token whose customers' payments earn points.
    WalletToken public immutable token;
    bool public transferable;
    /// @dev Points held in this ledger (claimed from the token or awarded here).
    uint256 private _ledgerSupply;
    mapping(address => uint256) private _ledger;

    event Awarded(address indexed account, uint256 paymentAmount, uint256 points);
    /// @notice Points `account` accrued in the token moved into this ledger.
    event Settled(address indexed account, uint256 points);
    event Redeemed(address indexed account, uint256 points, bytes32 indexed ref);
    event Transferred(address indexed from, address indexed to, uint256 points);
    event TransferableSet(bool transferable);

    error NotAwarder(address caller);
    error InsufficientPoints(address account, uint256 balance, uint256 needed);
    error TransfersDisabled();
    error AccountNotAllowed(address account);
    error ZeroAmount();

    /// @param rules AccountRules (roles)
    /// @param token_ the WalletToken whose payments earn points (it may be deployed after this)
    constructor(AccountRules rules, WalletToken token_) RoleGated(rules) {
        token = token_;
    }

    /// @notice The earning rate, in basis points of a payment (the token's).
    function rateBps() public view returns (uint16) {
        return token.pointsRateBps();
    }

    /// @notice Points held here plus those accrued in the token and not yet settled.
    function balanceOf(address account) public view returns (uint256) {
        return _ledger[account] + (_linked() ? token.accruedPoints(account) : 0);
    }

    function totalSupply() external view returns (uint256) {
        return _ledgerSupply + (_linked() ? token.unclaimedPoints() : 0);
    }

    /// @notice Award points for a payment of `paymentAmount` at the current rate (issuer only:
    ///         promotions and corrections; payments earn theirs in the token).
    function award(address account, uint256 paymentAmount) external returns (uint256 points) {
        Role has = accountRules.roleOf(msg.sender);
        if (has != Role.Issuer) revert NotAwarder(msg.sender);
        points = (paymentAmount * rateBps()) / 10_000;
        if (points == 0) return 0;
        _ledger[account] += points;
        _ledgerSupply += points;
        emit Awarded(account, paymentAmount, points);
    }

    /// @notice Move what `account` accrued in the token into this ledger (anyone may: it
    ///         changes where the points are kept, not how many there are).
    function settle(address account) public returns (uint256 points) {
        if (!_linked()) return 0;
        points = token.claimPoints(account);
        if (points == 0) return 0;
        _ledger[account] += points;
        _ledgerSupply += points;
        emit Settled(account, points);
    }

    /// @notice Redeem points; `ref` identifies what the bank gives in return.
    function redeem(uint256 points, bytes32 ref) external {
        if (points == 0) revert ZeroAmount();
        settle(msg.sender);
        uint256 balance = _ledger[msg.sender];
        if (balance < points) revert InsufficientPoints(msg.sender, balance, points);
        _ledger[msg.sender] = balance - points;
        _ledgerSupply -= points;
        emit Redeemed(msg.sender, points, ref);
    }

    /// @notice Give points to another allowed account, only while the bank allows it.
    function transfer(address to, uint256 points) external {
        if (!transferable) revert TransfersDisabled();
        if (!accountRules.isAllowed(to)) revert AccountNotAllowed(to);
        if (points == 0) revert ZeroAmount();
        settle(msg.sender);
        uint256 balance = _ledger[msg.sender];
        if (balance < points) revert InsufficientPoints(msg.sender, balance, points);
        _ledger[msg.sender] = balance - points;
        _ledger[to] += points;
        emit Transferred(msg.sender, to, points);
    }

    function setTransferable(bool on) external onlyGroupOr(Role.Admin) {
        transferable = on;
        emit TransferableSet(on);
    }

    /// @dev Whether the token names this ledger as the one that claims its points.
    function _linked() private view returns (bool) {
        return token.points() == address(this);
    }
}
