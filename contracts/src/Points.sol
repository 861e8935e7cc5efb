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
///      Merchants (enterprise accounts) publish catalog offers here (a points price, a stock,
///      an expiry) so that stock and expiry are enforced where the points are burned: two
///      customers cannot both take the last item, and nobody redeems an expired offer.
contract Points is RoleGated {
    /// @notice The wallet token whose customers' payments earn points.
    WalletToken public immutable token;
    bool public transferable;
    /// @dev Points held in this ledger (claimed from the token or awarded here).
    uint256 private _ledgerSupply;
    mapping(address => uint256) private _ledger;

    /// @notice A catalog offer; `closed` once withdrawn by its merchant or closed as expired.
    struct Offer {
        address merchant;
        uint64 expiry;
        bool closed;
        uint128 price;
        uint128 stock;
    }

    /// @notice Offers by id (ids start at 1; `offerCount` is the last one given).
    mapping(uint256 => Offer) public offers;
    uint256 public offerCount;

    event Awarded(address indexed account, uint256 paymentAmount, uint256 points);
    /// @notice Points `account` accrued in the token moved into this ledger.
    event Settled(address indexed account, uint256 points);
    event Redeemed(address indexed account, uint256 points, bytes32 indexed ref);
    event Transferred(address indexed from, address indexed to, uint256 points);
    event TransferableSet(bool transferable);
    event OfferPublished(
        uint256 indexed offerId, address indexed merchant, uint256 price, uint256 stock, uint64 expiry
    );
    /// @notice `account` redeemed `quantity` of an offer for `points` (also a `Redeemed` with the
    ///         offer id as its reference, so every burn shows as one).
    event OfferRedeemed(
        uint256 indexed offerId,
        address indexed account,
        address indexed merchant,
        uint256 quantity,
        uint256 points
    );
    /// @notice An offer closed after its expiry, with the stock it did not sell.
    event OfferExpired(uint256 indexed offerId, address indexed merchant, uint256 unsold);
    /// @notice An offer its merchant withdrew before its expiry.
    event OfferWithdrawn(uint256 indexed offerId, address indexed merchant, uint256 unsold);

    error NotAwarder(address caller);
    error InsufficientPoints(address account, uint256 balance, uint256 needed);
    error TransfersDisabled();
    error AccountNotAllowed(address account);
    error ZeroAmount();
    error InvalidOffer();
    error UnknownOffer(uint256 offerId);
    error OfferClosed(uint256 offerId);
    error OfferHasExpired(uint256 offerId, uint64 expiry);
    error OfferNotExpired(uint256 offerId, uint64 expiry);
    error OutOfStock(uint256 offerId, uint256 stock, uint256 wanted);

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
        _burn(msg.sender, points, ref);
    }

    /// @notice A merchant (enterprise account) offers `stock` items at `price` points each
    ///         until `expiry` (Unix seconds, exclusive).
    function publishOffer(uint128 price, uint128 stock, uint64 expiry)
        external
        onlyRole(Role.Enterprise)
        returns (uint256 offerId)
    {
        if (price == 0 || stock == 0 || expiry <= block.timestamp) revert InvalidOffer();
        offerId = ++offerCount;
        offers[offerId] = Offer(msg.sender, expiry, false, price, stock);
        emit OfferPublished(offerId, msg.sender, price, stock, expiry);
    }

    /// @notice Take `quantity` items of an open offer, burning their price in points.
    function redeemOffer(uint256 offerId, uint128 quantity) external returns (uint256 points) {
        if (quantity == 0) revert ZeroAmount();
        Offer storage offer = _offer(offerId);
        if (offer.closed) revert OfferClosed(offerId);
        if (block.timestamp >= offer.expiry) revert OfferHasExpired(offerId, offer.expiry);
        if (offer.stock < quantity) revert OutOfStock(offerId, offer.stock, quantity);
        offer.stock -= quantity;
        points = uint256(offer.price) * quantity;
        _burn(msg.sender, points, bytes32(offerId));
        emit OfferRedeemed(offerId, msg.sender, offer.merchant, quantity, points);
    }

    /// @notice Close an offer: its merchant at any time (withdrawn), anyone once it expired
    ///         (so the expiry shows in the history as an event).
    function closeOffer(uint256 offerId) external {
        Offer storage offer = _offer(offerId);
        if (offer.closed) revert OfferClosed(offerId);
        offer.closed = true;
        if (block.timestamp >= offer.expiry) {
            emit OfferExpired(offerId, offer.merchant, offer.stock);
        } else if (msg.sender == offer.merchant) {
            emit OfferWithdrawn(offerId, offer.merchant, offer.stock);
        } else {
            revert OfferNotExpired(offerId, offer.expiry);
        }
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

    function _burn(address account, uint256 points, bytes32 ref) private {
        settle(account);
        uint256 balance = _ledger[account];
        if (balance < points) revert InsufficientPoints(account, balance, points);
        _ledger[account] = balance - points;
        _ledgerSupply -= points;
        emit Redeemed(account, points, ref);
    }

    function _offer(uint256 offerId) private view returns (Offer storage offer) {
        offer = offers[offerId];
        if (offer.merchant == address(0)) revert UnknownOffer(offerId);
    }

    /// @dev Whether the token names this ledger as the one that claims its points.
    function _linked() private view returns (bool) {
        return token.points() == address(this);
    }
}
