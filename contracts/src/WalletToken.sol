// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {AccountRules, Role} from "./AccountRules.sol";
import {Points} from "./Points.sol";
import {RoleGated} from "./RoleGated.sol";

/// @title WalletToken
/// @notice The bank's digital currency (2 decimals). The issuer mints on a customer's top-up
///         and burns against the customer's withdrawal request; compliance freezes accounts and
///         flags external/cross-border recipients; each payer's KYC tier caps a single payment
///         and the day's total; flagged payments carry a fee, readable beforehand with
///         `quoteFee`, paid to the fee collector on top of the amount.
/// @dev Roles and tiers are read from AccountRules on every payment (single source of truth;
///      no second access-control list). Everything per holder that a payment touches (locked
///      funds, today's spending, frozen, recipient kind) shares one storage slot, so the checks
///      cost one call to AccountRules (payer and payee at once) and three slot reads and one
///      write beside ERC-20's own: the node executes every opcode in Python, so the payment
///      path is kept short (benchmarks/token_checks.py measures it against a plain ERC-20). Settlement contracts (role
///      `System`) pay out funds that were checked on their way in: no limits and no fee apply to
///      them as payers.
contract WalletToken is ERC20, Pausable, RoleGated {
    using SafeCast for uint256;

    /// @notice What kind of payment this is; fees are set per kind (Internal is free by default).
    enum Kind {
        Internal,
        External,
        CrossBorder
    }

    enum WithdrawalStatus {
        None,
        Pending,
        Burned,
        Rejected
    }

    /// @notice Per-tier limits in token units (cents); type(uint96).max means unlimited.
    struct Limits {
        uint96 perPayment;
        uint96 daily;
    }

    /// @notice fee = min(amount * bps / 10_000 + fixedFee, cap); a cap of 0 makes the kind free.
    struct Fee {
        uint16 bps;
        uint64 fixedFee;
        uint64 cap;
    }

    struct Holder {
        uint96 locked; // under a pending withdrawal
        bool frozen;
        Kind kind; // as a recipient: Internal unless compliance flags it
    }

    struct Withdrawal {
        address holder;
        uint96 amount;
        WithdrawalStatus status;
    }

    uint256 public constant MAX_FEE_BPS = 1_000;

    address public feeCollector;
    Points public points;
    uint256 public withdrawalCount;

    mapping(address => Holder) private _holders;
    /// @dev Per payer: (day << 128) | amount paid that day, day = block.timestamp / 1 days.
    mapping(address => uint256) private _spending;
    mapping(uint8 => Limits) private _limits;
    mapping(Kind => Fee) private _fees;
    mapping(uint256 => Withdrawal) private _withdrawals;
    /// @notice Top-up references already minted against (a top-up is credited once).
    mapping(bytes32 => bool) public toppedUp;

    event Minted(address indexed to, uint256 amount, bytes32 indexed topUpRef);
    event WithdrawalRequested(uint256 indexed id, address indexed holder, uint256 amount, bytes32 ref);
    event WithdrawalBurned(uint256 indexed id, address indexed holder, uint256 amount);
    event WithdrawalRejected(uint256 indexed id, address indexed holder, uint256 amount, bytes32 reason);
    event Frozen(address indexed account, bytes32 reason);
    event Unfrozen(address indexed account);
    event RecipientKindSet(address indexed account, Kind kind);
    event TierLimitsSet(uint8 indexed tier, uint96 perPayment, uint96 daily);
    event FeeSet(Kind indexed kind, uint16 bps, uint64 fixedFee, uint64 cap);
    event FeeCollectorSet(address indexed collector);
    event PointsSet(address indexed points);
    event FeeCharged(address indexed from, address indexed to, Kind kind, uint256 amount, uint256 fee);

    error AccountNotAllowed(address account);
    error AccountFrozen(address account);
    error OverPaymentLimit(address payer, uint256 amount, uint256 limit);
    error OverDailyLimit(address payer, uint256 spentToday, uint256 amount, uint256 limit);
    error ZeroAmount();
    error DuplicateTopUp(bytes32 topUpRef);
    error UnknownWithdrawal(uint256 id);
    error WithdrawalNotPending(uint256 id, WithdrawalStatus status);
    error InvalidFee(Kind kind);
    error InvalidCollector(address collector);

    /// @param name_ ERC-20 name, e.g. "Tally Euro"
    /// @param symbol_ ERC-20 symbol
    /// @param rules AccountRules (roles and KYC tiers)
    /// @param feeCollector_ receives fees; must be an allowed account to receive them
    /// @param points_ Points contract to award customers on payments (address(0): none)
    /// @param initialLimits limits for tiers 0..n-1 (tiers not given can pay nothing)
    /// @param fees fee per Kind, in enum order (Internal, External, CrossBorder); may be shorter
    constructor(
        string memory name_,
        string memory symbol_,
        AccountRules rules,
        address feeCollector_,
        Points points_,
        Limits[] memory initialLimits,
        Fee[] memory fees
    ) ERC20(name_, symbol_) RoleGated(rules) {
        _setFeeCollector(feeCollector_);
        points = points_;
        emit PointsSet(address(points_));
        for (uint256 i = 0; i < initialLimits.length; ++i) {
            _setTierLimits(i.toUint8(), initialLimits[i]);
        }
        if (fees.length > 3) revert InvalidFee(Kind.CrossBorder);
        for (uint256 i = 0; i < fees.length; ++i) {
            _setFee(Kind(i), fees[i]);
        }
    }

    /// @notice Cents: 1.00 is 100 units.
    function decimals() public pure override returns (uint8) {
        return 2;
    }

    // ---------------------------------------------------------------- payments

    /// @notice A payment; a fee applies only if compliance flagged `to` as external/cross-border.
    function transfer(address to, uint256 amount) public override returns (bool) {
        _pay(msg.sender, to, amount, Kind.Internal);
        return true;
    }

    /// @notice As `transfer`, from `from`; the allowance must cover the amount and any fee.
    function transferFrom(address from, address to, uint256 amount) public override returns (bool) {
        uint256 fee = _pay(from, to, amount, Kind.Internal);
        _spendAllowance(from, msg.sender, amount + fee);
        return true;
    }

    /// @notice A payment the payer declares external or cross-border; the fee charged is that
    ///         of the higher of the declared kind and the recipient's flagged kind.
    function transferExternal(address to, uint256 amount, Kind kind) external returns (uint256 fee) {
        return _pay(msg.sender, to, amount, kind);
    }

    /// @notice The fee a payment of `amount` from `from` to `to` declared as `kind` would pay.
    /// @dev `from` matters because settlement contracts pay no fee.
    function quoteFee(address from, address to, uint256 amount, Kind kind) external view returns (uint256) {
        if (accountRules.roleOf(from) == Role.System) return 0;
        return _fee(_effectiveKind(to, kind), amount);
    }

    // ---------------------------------------------------------------- issuer: top-up, withdrawal

    /// @notice Credit a top-up (e.g. a card payment identified by `topUpRef`), once per ref.
    function mint(address to, uint256 amount, bytes32 topUpRef) external onlyRole(Role.Issuer) {
        if (amount == 0) revert ZeroAmount();
        if (toppedUp[topUpRef]) revert DuplicateTopUp(topUpRef);
        toppedUp[topUpRef] = true;
        if (!accountRules.isAllowed(to)) revert AccountNotAllowed(to);
        _mint(to, amount);
        emit Minted(to, amount, topUpRef);
    }

    /// @notice Lock `amount` for withdrawal to the holder's bank account; the issuer then burns
    ///         it (paid out) or rejects it (unlocked).
    function requestWithdrawal(uint256 amount, bytes32 ref) external whenNotPaused returns (uint256 id) {
        if (amount == 0) revert ZeroAmount();
        if (!accountRules.isAllowed(msg.sender)) revert AccountNotAllowed(msg.sender);
        Holder storage h = _holders[msg.sender];
        if (h.frozen) revert AccountFrozen(msg.sender);
        uint256 available = balanceOf(msg.sender) - h.locked;
        if (amount > available) revert ERC20InsufficientBalance(msg.sender, available, amount);
        h.locked += amount.toUint96();
        id = ++withdrawalCount;
        _withdrawals[id] = Withdrawal(msg.sender, uint96(amount), WithdrawalStatus.Pending);
        emit WithdrawalRequested(id, msg.sender, amount, ref);
    }

    /// @notice The withdrawal was paid out off chain: burn the locked funds.
    function burnWithdrawal(uint256 id) external onlyRole(Role.Issuer) {
        Withdrawal storage w = _pendingWithdrawal(id);
        w.status = WithdrawalStatus.Burned;
        _holders[w.holder].locked -= w.amount;
        _burn(w.holder, w.amount);
        emit WithdrawalBurned(id, w.holder, w.amount);
    }

    /// @notice Refuse a withdrawal: the funds are unlocked.
    function rejectWithdrawal(uint256 id, bytes32 reason) external onlyRole(Role.Issuer) {
        Withdrawal storage w = _pendingWithdrawal(id);
        w.status = WithdrawalStatus.Rejected;
        _holders[w.holder].locked -= w.amount;
        emit WithdrawalRejected(id, w.holder, w.amount, reason);
    }

    // ---------------------------------------------------------------- compliance

    /// @notice A frozen account can neither pay nor be paid nor withdraw.
    function freeze(address account, bytes32 reason) external onlyRole(Role.Compliance) {
        _holders[account].frozen = true;
        emit Frozen(account, reason);
    }

    function unfreeze(address account) external onlyRole(Role.Compliance) {
        _holders[account].frozen = false;
        emit Unfrozen(account);
    }

    /// @notice Flag a recipient (e.g. a cross-border gateway) so every payment to it pays the
    ///         fee of `kind`, whichever function the payer uses.
    function setRecipientKind(address account, Kind kind) external onlyRole(Role.Compliance) {
        _holders[account].kind = kind;
        emit RecipientKindSet(account, kind);
    }

    /// @notice Stop all payments, top-ups and withdrawals (emergency): an admin or compliance
    ///         account, or the admin group.
    function pause() external {
        _requirePauser();
        _pause();
    }

    function unpause() external {
        _requirePauser();
        _unpause();
    }

    // ---------------------------------------------------------------- policy (group or issuer)

    function setTierLimits(uint8 tier, uint96 perPayment, uint96 daily) external onlyGroupOr(Role.Issuer) {
        _setTierLimits(tier, Limits(perPayment, daily));
    }

    function setFee(Kind kind, uint16 bps, uint64 fixedFee, uint64 cap) external onlyGroupOr(Role.Issuer) {
        _setFee(kind, Fee(bps, fixedFee, cap));
    }

    function setFeeCollector(address collector) external onlyGroupOr(Role.Issuer) {
        _setFeeCollector(collector);
    }

    function setPoints(Points points_) external onlyGroupOr(Role.Issuer) {
        points = points_;
        emit PointsSet(address(points_));
    }

    // ---------------------------------------------------------------- views

    function tierLimits(uint8 tier) external view returns (uint96 perPayment, uint96 daily) {
        Limits memory l = _limits[tier];
        return (l.perPayment, l.daily);
    }

    function feeOf(Kind kind) external view returns (uint16 bps, uint64 fixedFee, uint64 cap) {
        Fee memory f = _fees[kind];
        return (f.bps, f.fixedFee, f.cap);
    }

    function lockedOf(address account) external view returns (uint256) {
        return _holders[account].locked;
    }

    /// @notice Balance that can be paid or withdrawn (not locked under a withdrawal).
    function availableBalanceOf(address account) external view returns (uint256) {
        return balanceOf(account) - _holders[account].locked;
    }

    function isFrozen(address account) external view returns (bool) {
        return _holders[account].frozen;
    }

    function recipientKind(address account) external view returns (Kind) {
        return _holders[account].kind;
    }

    /// @notice What `account` has paid today (UTC day of the block timestamp).
    function spentToday(address account) external view returns (uint256) {
        uint256 record = _spending[account];
        return record >> 128 == block.timestamp / 1 days ? uint128(record) : 0;
    }

    function withdrawal(uint256 id) external view returns (address holder, uint256 amount, WithdrawalStatus status) {
        Withdrawal storage w = _withdrawals[id];
        if (w.status == WithdrawalStatus.None) revert UnknownWithdrawal(id);
        return (w.holder, w.amount, w.status);
    }

    // ---------------------------------------------------------------- internals

    /// @dev The payment path: both parties' roles in one AccountRules call, both holders' flags
    ///      in one slot each, the payer's limits, the fee leg (flagged payments only), then
    ///      ERC-20's own balance update directly (the `_update` override's checks are done here
    ///      already), then points.
    function _pay(address from, address to, uint256 amount, Kind declared) private returns (uint256 fee) {
        _requireNotPaused();
        (Role role, uint8 tier, Role payeeRole) = accountRules.paymentRoles(from, to);
        if (role == Role.None) revert AccountNotAllowed(from);
        if (payeeRole == Role.None) revert AccountNotAllowed(to);
        Holder storage payer = _holders[from];
        if (payer.frozen) revert AccountFrozen(from);
        Holder storage payee = _holders[to];
        if (payee.frozen) revert AccountFrozen(to);
        if (role != Role.System) {
            _spend(from, tier, amount);
            Kind flagged = payee.kind;
            Kind kind = flagged > declared ? flagged : declared;
            if (kind != Kind.Internal) fee = _chargeFee(from, to, kind, amount);
        }
        uint256 locked = payer.locked;
        if (locked != 0) {
            uint256 available = balanceOf(from) - locked;
            if (amount > available) revert ERC20InsufficientBalance(from, available, amount);
        }
        super._update(from, to, amount);
        if (role == Role.Customer) {
            Points p = points;
            if (address(p) != address(0)) p.award(from, amount);
        }
    }

    /// @dev Apply the payer's tier limits and record the payment in today's total.
    function _spend(address payer, uint8 tier, uint256 amount) private {
        Limits storage lim = _limits[tier];
        uint256 perPayment = lim.perPayment;
        if (amount > perPayment) revert OverPaymentLimit(payer, amount, perPayment);
        uint256 today = block.timestamp / 1 days;
        uint256 record = _spending[payer];
        uint256 spent = record >> 128 == today ? uint128(record) : 0;
        uint256 daily = lim.daily;
        if (spent + amount > daily) revert OverDailyLimit(payer, spent, amount, daily);
        _spending[payer] = (today << 128) | (spent + amount); // spent + amount <= daily < 2**96
    }

    function _chargeFee(address from, address to, Kind kind, uint256 amount) private returns (uint256 fee) {
        fee = _fee(kind, amount);
        if (fee == 0) return 0;
        address collector = feeCollector;
        if (!accountRules.isAllowed(collector)) revert AccountNotAllowed(collector);
        _update(from, collector, fee);
        emit FeeCharged(from, to, kind, amount, fee);
    }

    /// @dev Every balance change outside the payment path passes here: mint, burn, fee legs.
    function _update(address from, address to, uint256 value) internal override {
        _requireNotPaused();
        if (from != address(0)) {
            Holder storage h = _holders[from];
            if (h.frozen) revert AccountFrozen(from);
            uint256 locked = h.locked;
            if (locked != 0) {
                uint256 available = balanceOf(from) - locked;
                if (value > available) revert ERC20InsufficientBalance(from, available, value);
            }
        }
        if (to != address(0) && _holders[to].frozen) revert AccountFrozen(to);
        super._update(from, to, value);
    }

    function _effectiveKind(address to, Kind declared) private view returns (Kind) {
        Kind flagged = _holders[to].kind;
        return flagged > declared ? flagged : declared;
    }

    function _fee(Kind kind, uint256 amount) private view returns (uint256 fee) {
        Fee memory f = _fees[kind];
        if (f.cap == 0) return 0;
        fee = (amount * f.bps) / 10_000 + f.fixedFee;
        if (fee > f.cap) fee = f.cap;
    }

    function _pendingWithdrawal(uint256 id) private view returns (Withdrawal storage w) {
        w = _withdrawals[id];
        if (w.status == WithdrawalStatus.None) revert UnknownWithdrawal(id);
        if (w.status != WithdrawalStatus.Pending) revert WithdrawalNotPending(id, w.status);
    }

    function _requirePauser() private view {
        if (msg.sender == accountRules.adminGroup()) return;
        Role has = accountRules.roleOf(msg.sender);
        if (has != Role.Admin && has != Role.Compliance) revert UnauthorizedRole(msg.sender, has);
    }

    function _setTierLimits(uint8 tier, Limits memory l) private {
        _limits[tier] = l;
        emit TierLimitsSet(tier, l.perPayment, l.daily);
    }

    function _setFee(Kind kind, Fee memory f) private {
        if (f.bps > MAX_FEE_BPS || (kind == Kind.Internal && f.cap != 0)) revert InvalidFee(kind);
        _fees[kind] = f;
        emit FeeSet(kind, f.bps, f.fixedFee, f.cap);
    }

    function _setFeeCollector(address collector) private {
        if (collector == address(0)) revert InvalidCollector(collector);
        feeCollector = collector;
        emit FeeCollectorSet(collector);
    }
}
