// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {AccountRules, IAccountListener, Role} from "./AccountRules.sol";
import {RoleGated} from "./RoleGated.sol";

/// @title WalletToken
/// @notice The bank's digital currency (2 decimals). The issuer mints on a customer's top-up
///         and burns against the customer's withdrawal request; compliance freezes accounts and
///         flags external/cross-border recipients; each payer's KYC tier caps a single payment
///         and the day's total; flagged payments carry a fee, readable beforehand with
///         `quoteFee`, paid to the fee collector on top of the amount; customers earn points on
///         what they pay, redeemed through the `Points` ledger. A payment over the payer's tier
///         review threshold, or from or to an account compliance has flagged, is held for
///         review instead of paid: compliance releases it (paid as the payment would have
///         been) or rejects it (refunded); the payer may cancel it once the review window is over.
/// @dev Why it is built like this: the node executes every opcode in Python (microseconds
///      each, and each storage slot touched costs trie work), so a checked payment must cost
///      about what a plain ERC-20 transfer costs (benchmarks/token_checks.py holds it to +25%):
///      - The payment path (`_pay`) is assembly that only decides whether to refuse; the
///        reason is worked out in Solidity (`_refuse`) when it does.
///      - Everything a payment reads or changes about one account lives in one storage word
///        (`_holders`: spendable balance, today's spending, accrued points, KYC tier, recipient
///        kind, frozen, role), so a payment is two holder reads and writes, as in ERC-20, plus
///        the config word and the payer's tier limits.
///      - Roles and tiers are AccountRules' (the single source of truth), copied into the holder
///        words: AccountRules calls `syncAccount` in the same transaction as every change, and
///        the constructor copies the list as it stands, so a payment makes no external call.
///      - Points accrue in the payer's word and in the config word's running total, with an
///        event; the Points ledger claims them when the holder redeems or transfers them.
///      - Funds under a pending withdrawal or a held payment leave the spendable balance for
///        `_locked`, so a payment never reads them; `balanceOf` is spendable plus locked.
///      - Holds cost the payment path no storage read: the flagged bit is in the holder words
///        and the review threshold in the tier limits word it already reads; only a payment
///        that is held goes on to `_hold` (its record, the `PaymentHeld` event).
///      - ERC-20 is implemented directly (OpenZeppelin's interfaces and errors, no base contract),
///        without hooks on the payment path.
///      Settlement contracts (role `System`) pay out funds that were checked on their way in: no
///      limits, fee or points apply to them as payers.
contract WalletToken is IERC20, IERC20Metadata, IERC20Errors, IAccountListener, RoleGated {
    /// @notice What kind of payment this is; fees are set per kind (Internal is always free).
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

    enum HoldStatus {
        None,
        Held,
        Released,
        Rejected,
        Cancelled
    }

    /// @notice A payment held for review: `amount + fee` sits in the payer's locked funds.
    /// @dev `reasons` is a bit set: HELD_OVER_THRESHOLD, HELD_PAYER_FLAGGED, HELD_PAYEE_FLAGGED.
    struct Hold {
        address from;
        uint96 amount;
        address to;
        uint64 fee;
        Kind kind;
        uint8 reasons;
        HoldStatus status;
        uint64 deadline;
    }

    /// @notice fee = min(amount * bps / 10_000 + fixedFee, cap); a cap of 0 makes the kind free.
    struct Fee {
        uint16 bps;
        uint64 fixedFee;
        uint64 cap;
    }

    struct Withdrawal {
        address holder;
        uint96 amount;
        WithdrawalStatus status;
    }

    uint256 public constant MAX_FEE_BPS = 1_000;
    uint256 public constant MAX_POINTS_RATE_BPS = 10_000;
    /// @notice Balances and the supply fit the holder word's 80 bits (1.2e22 in cents).
    uint256 public constant MAX_SUPPLY = (1 << 80) - 1;
    // Hold reason bits (`PaymentHeld.reasons`); private, as every public name costs the
    // payment path a little in the selector dispatch.
    uint8 private constant HELD_OVER_THRESHOLD = 1;
    uint8 private constant HELD_PAYER_FLAGGED = 2;
    uint8 private constant HELD_PAYEE_FLAGGED = 4;
    uint64 private constant DEFAULT_REVIEW_WINDOW = 72 hours;

    // Holder word, one per account: the whole of what a payment reads and writes about it.
    //   bits   0..79   spendable balance (not under a pending withdrawal)
    //   bits  80..134  points accrued, not yet claimed by the Points ledger (saturates)
    //   bit   135      flagged by compliance: its payments, in and out, are held for review
    //   bits 136..143  KYC tier (AccountRules' copy)
    //   bits 144..145  recipient kind (Kind; set by compliance)
    //   bit  146       frozen (set by compliance)
    //   bit  147       active: role not None and not frozen (kept by `_withActive`), so the
    //                  payment path checks both parties with one AND
    //   bits 148..151  role (AccountRules' copy; None = not allowed)
    //   bits 152..255  spending: day << 80 | total paid that day, one number, on top so that it
    //                  reads with one shift (day = block.timestamp / 1 days, 24 bits: good to
    //                  the year 47,000; a day's total past 2^80-1, 1.2e22 cents, carries into it)
    uint256 private constant BALANCE = (1 << 80) - 1;
    uint256 private constant POINTS_SHIFT = 80;
    uint256 private constant POINTS = (1 << 55) - 1;
    uint256 private constant FLAGGED = 0x8000000000000000000000000000000000; // 1 << 135, literal: one PUSH
    uint256 private constant TIER_SHIFT = 136;
    uint256 private constant KIND_SHIFT = 144;
    uint256 private constant FROZEN = 1 << 146;
    uint256 private constant ACTIVE = 1 << 147;
    uint256 private constant ROLE_SHIFT = 148;
    uint256 private constant SPENDING_SHIFT = 152;
    uint256 private constant DAY_SHIFT = 80; // within the spending number
    uint256 private constant BELOW_SPENDING = 0xffffffffffffffffffffffffffffffffffffff; // bits 0..151
    /// @dev Role and tier bits, as `syncAccount` replaces them.
    uint256 private constant ROLE_TIER = 0xf << ROLE_SHIFT | 0xff << TIER_SHIFT;

    // Config word: bits 0..15 points rate (bps of a customer's payment), bit 16 paused,
    // bits 24..255 points accrued in holder words and not yet claimed (Points' total supply).
    uint256 private constant RATE = 0xffff;
    uint256 private constant PAUSED = 1 << 16;
    uint256 private constant UNCLAIMED_SHIFT = 24;
    /// @dev Tier limits word: perPayment << 160 | review << 96 | daily, where review is the
    ///      largest amount paid without review: the threshold, or all ones for none (0, the
    ///      threshold's "none", is kept only by tiers never configured, which cannot pay), so
    ///      the payment path's test is one comparison. Amounts above 2^64-1 cents (1.8e15
    ///      in currency units, beyond any payment) are thereby always held for review.
    uint256 private constant DAILY = (1 << 96) - 1;
    uint256 private constant REVIEW_SHIFT = 96;
    uint256 private constant REVIEW = 0xffffffffffffffff; // literal: one PUSH
    uint256 private constant FEE_CAP_SHIFT = 80;
    uint256 private constant FEE_FIXED = (1 << 64) - 1;
    /// @dev Event topics for the assembly payment path: keccak256 of
    ///      "PointsEarned(address,uint256,uint256)", and the bitwise NOT of keccak256 of
    ///      "Transfer(address,address,uint256)". Not the topic itself because the compiler,
    ///      seeing that constant used by several `emit`s, copies it from code (about ten
    ///      opcodes) where a constant of its own is one PUSH32 and a NOT.
    uint256 private constant NOT_TRANSFER_EVENT = 0x220dad52e41d3764963d4f9703c872556ad4580e9c3b5ee9d70aa5b20adc4c10;
    uint256 private constant POINTS_EARNED_EVENT = 0x4b97a5e5e9b332836eea24e70b760c1ffce3041c0eb15309837d180f8bfff26a;

    uint256 private constant SYSTEM = uint256(Role.System);

    uint256 private _config;
    mapping(address => uint256) private _holders;
    /// @dev Per tier: perPayment << 160 | review << 96 | daily (see REVIEW_SHIFT).
    uint256[256] private _limits;
    uint256 private _totalSupply;
    mapping(address => uint256) private _locked;
    mapping(address => mapping(address => uint256)) private _allowances;
    string private _name;
    string private _symbol;

    address public feeCollector;
    /// @notice The ledger that claims accrued points (address(0): none yet).
    address public points;
    uint256 public withdrawalCount;
    /// @dev Per Kind: bps | fixedFee << 16 | cap << 80.
    uint256[3] private _feeWords;
    mapping(uint256 => Withdrawal) private _withdrawals;
    /// @notice Top-up references already minted against (a top-up is credited once).
    mapping(bytes32 => bool) public toppedUp;
    uint256 public holdCount;
    /// @notice How long compliance has to review a held payment before its payer may cancel it.
    uint64 public reviewWindow;
    mapping(uint256 => Hold) private _holds;

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
    event PointsRateSet(uint16 rateBps);
    event FeeCharged(address indexed from, address indexed to, Kind kind, uint256 amount, uint256 fee);
    /// @notice A customer's payment of `paymentAmount` earned `points` (accrued in the token).
    event PointsEarned(address indexed account, uint256 paymentAmount, uint256 points);
    /// @notice The Points ledger took over `points` accrued to `account`.
    event PointsClaimed(address indexed account, uint256 points);
    /// @notice The token's copy of an account's AccountRules entry changed (role 0: removed).
    event AccountSynced(address indexed account, Role role, uint8 tier);
    event ReviewThresholdSet(uint8 indexed tier, uint64 threshold);
    event ReviewWindowSet(uint64 seconds_);
    event AccountFlagged(address indexed account, bytes32 reason);
    event AccountUnflagged(address indexed account);
    /// @notice A payment was held for review instead of paid (`reasons`: HELD_* bits).
    event PaymentHeld(
        uint256 indexed holdId, address indexed from, address indexed to, uint256 amount, Kind kind, uint8 reasons
    );
    event HoldReleased(uint256 indexed holdId, address indexed from, address indexed to, uint256 amount, uint256 fee);
    event HoldRejected(uint256 indexed holdId, address indexed from, address indexed to, uint256 amount, bytes32 reason);
    event HoldCancelled(uint256 indexed holdId, address indexed from, address indexed to, uint256 amount);
    event Paused(address account);
    event Unpaused(address account);

    error AccountNotAllowed(address account);
    error AccountFrozen(address account);
    error OverPaymentLimit(address payer, uint256 amount, uint256 limit);
    error OverDailyLimit(address payer, uint256 spentToday, uint256 amount, uint256 limit);
    error ZeroAmount();
    error DuplicateTopUp(bytes32 topUpRef);
    error OverSupplyCap(uint256 supply, uint256 amount);
    error UnknownWithdrawal(uint256 id);
    error WithdrawalNotPending(uint256 id, WithdrawalStatus status);
    error InvalidFee(Kind kind);
    error InvalidCollector(address collector);
    error InvalidRate(uint256 rateBps);
    error LengthMismatch();
    error NotAccountRules(address caller);
    error NotPoints(address caller);
    error EnforcedPause();
    error ExpectedPause();
    error UnknownHold(uint256 id);
    error HoldNotPending(uint256 id, HoldStatus status);
    error NotHoldPayer(uint256 id, address caller);
    error ReviewPending(uint256 id, uint256 deadline);

    /// @param name_ ERC-20 name, e.g. "Tally Euro"
    /// @param symbol_ ERC-20 symbol
    /// @param rules AccountRules (roles and KYC tiers); it must list this token as a listener
    /// @param feeCollector_ receives fees; must be an allowed account to receive them
    /// @param points_ the Points ledger that claims accrued points (address(0): none yet)
    /// @param pointsRate_ points a customer earns per payment, in bps of the amount (0: none)
    /// @param initialLimits limits for tiers 0..n-1 (tiers not given can pay nothing)
    /// @param fees fee per Kind, in enum order (Internal, External, CrossBorder); may be shorter
    /// @param reviewThresholds per tier from 0: payments above are held for review (0: never)
    /// @param reviewWindow_ seconds before a held payment's payer may cancel (0: 72 hours)
    constructor(
        string memory name_,
        string memory symbol_,
        AccountRules rules,
        address feeCollector_,
        address points_,
        uint16 pointsRate_,
        Limits[] memory initialLimits,
        Fee[] memory fees,
        uint64[] memory reviewThresholds,
        uint64 reviewWindow_
    ) RoleGated(rules) {
        _name = name_;
        _symbol = symbol_;
        _setFeeCollector(feeCollector_);
        _setPoints(points_);
        _setPointsRate(pointsRate_);
        if (initialLimits.length > 256) revert LengthMismatch();
        for (uint256 i = 0; i < initialLimits.length; ++i) {
            _setTierLimits(uint8(i), initialLimits[i]);
        }
        if (reviewThresholds.length > 256) revert LengthMismatch();
        for (uint256 i = 0; i < reviewThresholds.length; ++i) {
            _setReviewThreshold(uint8(i), reviewThresholds[i]);
        }
        _setReviewWindow(reviewWindow_ == 0 ? DEFAULT_REVIEW_WINDOW : reviewWindow_);
        if (fees.length > 3) revert InvalidFee(Kind.CrossBorder);
        for (uint256 i = 0; i < fees.length; ++i) {
            _setFee(Kind(i), fees[i]);
        }
        address[] memory listed = rules.accounts();
        for (uint256 i = 0; i < listed.length; ++i) {
            (Role role, uint8 tier) = rules.roleAndTier(listed[i]);
            _sync(listed[i], role, tier);
        }
    }

    // ---------------------------------------------------------------- ERC-20

    function name() external view returns (string memory) {
        return _name;
    }

    function symbol() external view returns (string memory) {
        return _symbol;
    }

    /// @notice Cents: 1.00 is 100 units.
    function decimals() external pure returns (uint8) {
        return 2;
    }

    function totalSupply() external view returns (uint256) {
        return _totalSupply;
    }

    /// @notice Spendable plus locked under pending withdrawals.
    function balanceOf(address account) public view returns (uint256) {
        return (_holders[account] & BALANCE) + _locked[account];
    }

    function allowance(address owner, address spender) external view returns (uint256) {
        return _allowances[owner][spender];
    }

    function approve(address spender, uint256 value) external returns (bool) {
        if (spender == address(0)) revert ERC20InvalidSpender(address(0));
        _allowances[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    // ---------------------------------------------------------------- payments

    /// @notice A payment; a fee applies only if compliance flagged `to` as external/cross-border.
    function transfer(address to, uint256 amount) external returns (bool) {
        _pay(msg.sender, to, amount, 0);
        return true;
    }

    /// @notice As `transfer`, from `from`; the allowance must cover the amount and any fee.
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 fee = _pay(from, to, amount, 0);
        _spendAllowance(from, msg.sender, amount + fee);
        return true;
    }

    /// @notice A payment the payer declares external or cross-border; the fee charged is that
    ///         of the higher of the declared kind and the recipient's flagged kind.
    function transferExternal(address to, uint256 amount, Kind kind) external returns (uint256 fee) {
        return _pay(msg.sender, to, amount, uint256(kind));
    }

    /// @notice The fee a payment of `amount` from `from` to `to` declared as `kind` would pay.
    /// @dev `from` matters because settlement contracts pay no fee.
    function quoteFee(address from, address to, uint256 amount, Kind kind) external view returns (uint256) {
        if (_role(_holders[from]) == SYSTEM) return 0;
        uint256 flagged = (_holders[to] >> KIND_SHIFT) & 3;
        return _feeFrom(_feeWords[flagged > uint256(kind) ? flagged : uint256(kind)], amount);
    }

    // ---------------------------------------------------------------- issuer: top-up, withdrawal

    /// @notice Credit a top-up (e.g. a card payment identified by `topUpRef`), once per ref.
    function mint(address to, uint256 amount, bytes32 topUpRef) external onlyRole(Role.Issuer) {
        _requireNotPaused();
        if (amount == 0) revert ZeroAmount();
        if (toppedUp[topUpRef]) revert DuplicateTopUp(topUpRef);
        toppedUp[topUpRef] = true;
        uint256 h = _holders[to];
        if (_role(h) == 0) revert AccountNotAllowed(to);
        if (h & FROZEN != 0) revert AccountFrozen(to);
        uint256 supply = _totalSupply;
        if (amount > MAX_SUPPLY - supply) revert OverSupplyCap(supply, amount);
        _totalSupply = supply + amount;
        _holders[to] = h + amount; // balance <= supply <= MAX_SUPPLY: no carry out of its bits
        emit Transfer(address(0), to, amount);
        emit Minted(to, amount, topUpRef);
    }

    /// @notice Lock `amount` for withdrawal to the holder's bank account; the issuer then burns
    ///         it (paid out) or rejects it (unlocked).
    function requestWithdrawal(uint256 amount, bytes32 ref) external returns (uint256 id) {
        _requireNotPaused();
        if (amount == 0) revert ZeroAmount();
        uint256 h = _holders[msg.sender];
        if (_role(h) == 0) revert AccountNotAllowed(msg.sender);
        if (h & FROZEN != 0) revert AccountFrozen(msg.sender);
        uint256 available = h & BALANCE;
        if (amount > available) revert ERC20InsufficientBalance(msg.sender, available, amount);
        _holders[msg.sender] = h - amount;
        _locked[msg.sender] += amount;
        id = ++withdrawalCount;
        _withdrawals[id] = Withdrawal(msg.sender, uint96(amount), WithdrawalStatus.Pending);
        emit WithdrawalRequested(id, msg.sender, amount, ref);
    }

    /// @notice The withdrawal was paid out off chain: burn the locked funds.
    function burnWithdrawal(uint256 id) external onlyRole(Role.Issuer) {
        _requireNotPaused();
        Withdrawal storage w = _pendingWithdrawal(id);
        address holder = w.holder;
        if (_holders[holder] & FROZEN != 0) revert AccountFrozen(holder);
        uint256 amount = w.amount;
        w.status = WithdrawalStatus.Burned;
        _locked[holder] -= amount;
        _totalSupply -= amount;
        emit Transfer(holder, address(0), amount);
        emit WithdrawalBurned(id, holder, amount);
    }

    /// @notice Refuse a withdrawal: the funds are unlocked.
    function rejectWithdrawal(uint256 id, bytes32 reason) external onlyRole(Role.Issuer) {
        Withdrawal storage w = _pendingWithdrawal(id);
        address holder = w.holder;
        uint256 amount = w.amount;
        w.status = WithdrawalStatus.Rejected;
        _locked[holder] -= amount;
        _holders[holder] += amount;
        emit WithdrawalRejected(id, holder, amount, reason);
    }

    // ---------------------------------------------------------------- compliance

    /// @notice A frozen account can neither pay nor be paid nor withdraw.
    function freeze(address account, bytes32 reason) external onlyRole(Role.Compliance) {
        _holders[account] = _withActive(_holders[account] | FROZEN);
        emit Frozen(account, reason);
    }

    function unfreeze(address account) external onlyRole(Role.Compliance) {
        _holders[account] = _withActive(_holders[account] & ~FROZEN);
        emit Unfrozen(account);
    }

    /// @notice Hold every payment from or to `account` for review (it can still pay and be
    ///         paid, unlike a frozen one; compliance releases or rejects each payment).
    function flag(address account, bytes32 reason) external onlyRole(Role.Compliance) {
        _holders[account] |= FLAGGED;
        emit AccountFlagged(account, reason);
    }

    function unflag(address account) external onlyRole(Role.Compliance) {
        _holders[account] &= ~FLAGGED;
        emit AccountUnflagged(account);
    }

    /// @notice Pay a held payment to its payee, with its fee and points, as the payment would
    ///         have been (the daily limit counted it when it was held).
    function releaseHold(uint256 id) external onlyRole(Role.Compliance) {
        _requireNotPaused();
        Hold storage h = _pendingHold(id);
        h.status = HoldStatus.Released;
        (address from, address to, uint256 amount, uint256 fee) = (h.from, h.to, h.amount, h.fee);
        uint256 payee = _holders[to];
        if (_role(payee) == 0) revert AccountNotAllowed(to);
        if (payee & FROZEN != 0) revert AccountFrozen(to);
        _locked[from] -= amount + fee;
        _holders[to] = payee + amount; // balances <= MAX_SUPPLY: no carry
        _logTransfer(from, to, amount);
        if (fee != 0) _creditFee(from, to, h.kind, amount, fee);
        _earnPoints(from, amount);
        emit HoldReleased(id, from, to, amount, fee);
    }

    /// @notice Refuse a held payment: its amount and fee return to the payer's spendable balance.
    function rejectHold(uint256 id, bytes32 reason) external onlyRole(Role.Compliance) {
        Hold storage h = _pendingHold(id);
        h.status = HoldStatus.Rejected;
        _refundHold(h);
        emit HoldRejected(id, h.from, h.to, h.amount, reason);
    }

    /// @notice The payer takes a held payment back once the review window is over.
    function cancelHold(uint256 id) external {
        Hold storage h = _pendingHold(id);
        if (msg.sender != h.from) revert NotHoldPayer(id, msg.sender);
        if (block.timestamp < h.deadline) revert ReviewPending(id, h.deadline);
        h.status = HoldStatus.Cancelled;
        _refundHold(h);
        emit HoldCancelled(id, h.from, h.to, h.amount);
    }

    /// @notice Flag a recipient (e.g. a cross-border gateway) so every payment to it pays the
    ///         fee of `kind`, whichever function the payer uses.
    function setRecipientKind(address account, Kind kind) external onlyRole(Role.Compliance) {
        _holders[account] = (_holders[account] & ~(uint256(3) << KIND_SHIFT)) | (uint256(kind) << KIND_SHIFT);
        emit RecipientKindSet(account, kind);
    }

    /// @notice Stop all payments, top-ups and withdrawals (emergency): an admin or compliance
    ///         account, or the admin group.
    function pause() external {
        _requirePauser();
        _requireNotPaused();
        _config |= PAUSED;
        emit Paused(msg.sender);
    }

    function unpause() external {
        _requirePauser();
        if (_config & PAUSED == 0) revert ExpectedPause();
        _config &= ~PAUSED;
        emit Unpaused(msg.sender);
    }

    function paused() external view returns (bool) {
        return _config & PAUSED != 0;
    }

    // ---------------------------------------------------------------- AccountRules, Points

    /// @notice AccountRules' push of a role or tier change (role None: removed), so payments
    ///         read the copy in the holder word instead of calling AccountRules.
    function syncAccount(address account, Role role, uint8 tier) external {
        if (msg.sender != address(accountRules)) revert NotAccountRules(msg.sender);
        _sync(account, role, tier);
    }

    /// @notice Points accrued to `account` that the Points ledger has not claimed yet.
    function accruedPoints(address account) external view returns (uint256) {
        return (_holders[account] >> POINTS_SHIFT) & POINTS;
    }

    /// @notice All points accrued and not yet claimed.
    function unclaimedPoints() external view returns (uint256) {
        return _config >> UNCLAIMED_SHIFT;
    }

    function pointsRateBps() external view returns (uint16) {
        return uint16(_config & RATE);
    }

    /// @notice The Points ledger takes over what `account` has accrued (and returns it).
    function claimPoints(address account) external returns (uint256 claimed) {
        if (msg.sender != points) revert NotPoints(msg.sender);
        uint256 h = _holders[account];
        claimed = (h >> POINTS_SHIFT) & POINTS;
        if (claimed == 0) return 0;
        _holders[account] = h & ~(POINTS << POINTS_SHIFT);
        _config -= claimed << UNCLAIMED_SHIFT;
        emit PointsClaimed(account, claimed);
    }

    // ---------------------------------------------------------------- policy (group or issuer)

    function setTierLimits(uint8 tier, uint96 perPayment, uint96 daily) external onlyGroupOr(Role.Issuer) {
        _setTierLimits(tier, Limits(perPayment, daily));
    }

    /// @notice Payments above `threshold` from a payer of `tier` are held for review (0: none).
    function setReviewThreshold(uint8 tier, uint64 threshold) external onlyGroupOr(Role.Issuer) {
        _setReviewThreshold(tier, threshold);
    }

    function setReviewWindow(uint64 seconds_) external onlyGroupOr(Role.Issuer) {
        _setReviewWindow(seconds_);
    }

    function setFee(Kind kind, uint16 bps, uint64 fixedFee, uint64 cap) external onlyGroupOr(Role.Issuer) {
        _setFee(kind, Fee(bps, fixedFee, cap));
    }

    function setFeeCollector(address collector) external onlyGroupOr(Role.Issuer) {
        _setFeeCollector(collector);
    }

    function setPoints(address points_) external onlyGroupOr(Role.Issuer) {
        _setPoints(points_);
    }

    function setPointsRate(uint16 rateBps) external onlyGroupOr(Role.Issuer) {
        _setPointsRate(rateBps);
    }

    // ---------------------------------------------------------------- views

    function tierLimits(uint8 tier) external view returns (uint96 perPayment, uint96 daily) {
        uint256 l = _limits[tier];
        return (uint96(l >> 160), uint96(l));
    }

    /// @notice Payments above this are held for review (0: none).
    function reviewThreshold(uint8 tier) external view returns (uint64) {
        uint64 review = uint64(_limits[tier] >> REVIEW_SHIFT);
        return review == REVIEW ? 0 : review;
    }

    function isFlagged(address account) external view returns (bool) {
        return _holders[account] & FLAGGED != 0;
    }

    /// @notice A held payment; the list of an account's holds is in the events (`PaymentHeld`).
    function hold(uint256 id) external view returns (Hold memory) {
        Hold memory h = _holds[id];
        if (h.status == HoldStatus.None) revert UnknownHold(id);
        return h;
    }

    function feeOf(Kind kind) external view returns (uint16 bps, uint64 fixedFee, uint64 cap) {
        uint256 word = _feeWords[uint256(kind)];
        return (uint16(word), uint64(word >> 16), uint64(word >> FEE_CAP_SHIFT));
    }

    /// @notice Funds under pending withdrawals and held payments (with their fees).
    function lockedOf(address account) external view returns (uint256) {
        return _locked[account];
    }

    /// @notice Balance that can be paid or withdrawn (not locked under a withdrawal or hold).
    function availableBalanceOf(address account) external view returns (uint256) {
        return _holders[account] & BALANCE;
    }

    function isFrozen(address account) external view returns (bool) {
        return _holders[account] & FROZEN != 0;
    }

    function recipientKind(address account) external view returns (Kind) {
        return Kind((_holders[account] >> KIND_SHIFT) & 3);
    }

    /// @notice The token's copy of the account's role and tier (AccountRules' entry).
    function holderRole(address account) external view returns (Role role, uint8 tier) {
        uint256 h = _holders[account];
        return (Role(_role(h)), uint8(h >> TIER_SHIFT));
    }

    /// @notice What `account` has paid today (UTC day of the block timestamp).
    function spentToday(address account) external view returns (uint256) {
        return _spentToday(_holders[account]);
    }

    function withdrawal(uint256 id) external view returns (address holder, uint256 amount, WithdrawalStatus status) {
        Withdrawal storage w = _withdrawals[id];
        if (w.status == WithdrawalStatus.None) revert UnknownWithdrawal(id);
        return (w.holder, w.amount, w.status);
    }

    // ---------------------------------------------------------------- internals

    /// @dev The payment path: one read of the config word and of each party's holder word,
    ///      the payer's tier limits (and the fee word, for flagged payments only), then one
    ///      write of each holder word (and of the config word when points are earned).
    ///      A payment over the tier's review threshold or from or to a flagged account is
    ///      held: the payer's word is debited and its spending counted, the payee's is not
    ///      written, no Transfer or points, and `_hold` records it.
    ///      Assembly, because every opcode costs the node real time. The checks only decide
    ///      *whether* to refuse: a refused payment reverts in `_refuse`, which re-reads the
    ///      state to say why, and the revert discards whatever was written or logged here.
    ///      The fee formula is `_feeFrom`'s (which `quoteFee` uses).
    /// @param kind the declared Kind on entry; the Kind charged on return
    function _pay(address from, address to, uint256 amount, uint256 kind) private returns (uint256 fee) {
        bool refused;
        uint256 held;
        assembly ("memory-safe") {
            let config := sload(_config.slot)
            mstore(0x00, from)
            mstore(0x20, _holders.slot)
            let payerSlot := keccak256(0x00, 0x40)
            let payer := sload(payerSlot)
            mstore(0x00, to)
            let payeeSlot := keccak256(0x00, 0x40)
            let payee := sload(payeeSlot)
            // Paused, either party not allowed (role None) or frozen, or an amount no balance
            // can hold (which also keeps every sum below far from overflowing).
            refused := or(or(iszero(and(and(payer, payee), ACTIVE)), and(config, PAUSED)), shr(80, amount))
            mstore(0x00, amount)
            switch and(shr(ROLE_SHIFT, payer), 0xf)
            case 7 {
                // Role.System: a settlement contract paying out; no limits, fee, points or holds.
                kind := 0
            }
            default {
                {
                    // Tier limits: per payment, and today's total. A spending number below
                    // today's (day << 80, total 0) is a past day's: today's starts from zero.
                    let limits := sload(add(_limits.slot, and(shr(TIER_SHIFT, payer), 0xff)))
                    // Held: either party flagged, or amount above the review bits.
                    // (The review bits by two shifts: the compiler builds REVIEW from pieces.)
                    held := or(and(or(payer, payee), FLAGGED), gt(amount, shr(192, shl(96, limits))))
                    let today := shl(DAY_SHIFT, div(timestamp(), 86400))
                    let updated := shr(SPENDING_SHIFT, payer)
                    if lt(updated, today) { updated := today }
                    updated := add(updated, amount)
                    // amount > perPayment (the top 96 bits) iff amount << 160 > the whole word.
                    refused := or(refused, or(gt(shl(160, amount), limits), gt(sub(updated, today), and(limits, DAILY))))
                    // The spending number only grows.
                    payer := or(and(payer, BELOW_SPENDING), shl(SPENDING_SHIFT, updated))
                }
                // The fee kind: the higher of the declared and the recipient's flagged kind.
                let flagged := and(shr(KIND_SHIFT, payee), 3)
                if gt(flagged, kind) { kind := flagged }
                if kind {
                    let f := sload(add(_feeWords.slot, kind))
                    let cap := shr(FEE_CAP_SHIFT, f)
                    if cap {
                        fee := add(div(mul(amount, and(f, 0xffff)), 10000), and(shr(16, f), FEE_FIXED))
                        if gt(fee, cap) { fee := cap }
                    }
                }
            }
            // One Transfer log for both branches (the compiler would copy a topic used twice
            // from code), unless the payment is held: then it is logged when released.
            if iszero(held) { log3(0x00, 0x20, not(NOT_TRANSFER_EVENT), from, to) }
            // Customers (role 6) earn points, accrued in their word and the config total.
            // (A held payment earns them when released.)
            let rate := mul(eq(and(shr(ROLE_SHIFT, payer), 0xf), 6), and(config, RATE))
            if held { rate := 0 }
            if rate {
                let earned := div(mul(amount, rate), 10000)
                if gt(earned, sub(POINTS, and(shr(POINTS_SHIFT, payer), POINTS))) {
                    earned := sub(POINTS, and(shr(POINTS_SHIFT, payer), POINTS)) // saturated
                }
                if earned {
                    payer := add(payer, shl(POINTS_SHIFT, earned))
                    sstore(_config.slot, add(config, shl(UNCLAIMED_SHIFT, earned)))
                    mstore(0x20, earned)
                    log2(0x00, 0x40, POINTS_EARNED_EVENT, from)
                }
            }
            let debit := add(amount, fee)
            refused := or(refused, gt(debit, and(payer, BALANCE)))
            // Holder words stay as they were for `_refuse` to read.
            if iszero(refused) {
                payer := sub(payer, debit)
                sstore(payerSlot, payer)
                if iszero(held) {
                    if eq(payeeSlot, payerSlot) { payee := payer }
                    sstore(payeeSlot, add(payee, amount)) // balances <= MAX_SUPPLY: no carry
                }
            }
        }
        if (refused) _refuse(from, to, amount, fee);
        if (held != 0) _hold(from, to, amount, fee, Kind(kind));
        else if (fee != 0) _creditFee(from, to, Kind(kind), amount, fee);
    }

    /// @dev Record a payment `_pay` held (the payer's word already debited `amount + fee`).
    function _hold(address from, address to, uint256 amount, uint256 fee, Kind kind) private {
        uint256 review = (_limits[uint8(_holders[from] >> TIER_SHIFT)] >> REVIEW_SHIFT) & REVIEW;
        uint8 reasons = (amount > review ? HELD_OVER_THRESHOLD : 0)
            | (_holders[from] & FLAGGED != 0 ? HELD_PAYER_FLAGGED : 0)
            | (_holders[to] & FLAGGED != 0 ? HELD_PAYEE_FLAGGED : 0);
        _locked[from] += amount + fee;
        uint256 id = ++holdCount;
        _holds[id] = Hold(
            from, uint96(amount), to, uint64(fee), kind, reasons, HoldStatus.Held, uint64(block.timestamp) + reviewWindow
        );
        emit PaymentHeld(id, from, to, amount, kind, reasons);
    }

    /// @dev A held payment's amount and fee back to its payer's spendable balance.
    function _refundHold(Hold storage h) private {
        uint256 debit = uint256(h.amount) + h.fee;
        _locked[h.from] -= debit;
        _holders[h.from] += debit; // the balance left this word when held: no carry
    }

    /// @dev `_pay`'s points for a customer's payment (a released hold earns them here).
    function _earnPoints(address account, uint256 amount) private {
        uint256 h = _holders[account];
        uint256 rate = _role(h) == uint256(Role.Customer) ? _config & RATE : 0;
        if (rate == 0) return;
        uint256 earned = (amount * rate) / 10_000;
        uint256 room = POINTS - ((h >> POINTS_SHIFT) & POINTS);
        if (earned > room) earned = room;
        if (earned == 0) return;
        _holders[account] = h + (earned << POINTS_SHIFT);
        _config += earned << UNCLAIMED_SHIFT;
        emit PointsEarned(account, amount, earned);
    }

    function _pendingHold(uint256 id) private view returns (Hold storage h) {
        h = _holds[id];
        if (h.status == HoldStatus.None) revert UnknownHold(id);
        if (h.status != HoldStatus.Held) revert HoldNotPending(id, h.status);
    }

    /// @dev Why `_pay` refused: the same checks in the same order, each with its error.
    function _refuse(address from, address to, uint256 amount, uint256 fee) private view {
        _requireNotPaused();
        uint256 payer = _holders[from];
        uint256 payee = _holders[to];
        if (_role(payer) == 0) revert AccountNotAllowed(from);
        if (_role(payee) == 0) revert AccountNotAllowed(to);
        if (payer & FROZEN != 0) revert AccountFrozen(from);
        if (payee & FROZEN != 0) revert AccountFrozen(to);
        if (_role(payer) != SYSTEM) {
            uint256 limits = _limits[uint8(payer >> TIER_SHIFT)];
            uint256 perPayment = limits >> 160;
            if (amount > perPayment) revert OverPaymentLimit(from, amount, perPayment);
            uint256 spent = _spentToday(payer);
            uint256 daily = limits & DAILY;
            if (spent + amount > daily) revert OverDailyLimit(from, spent, amount, daily);
        }
        revert ERC20InsufficientBalance(from, payer & BALANCE, amount + fee);
    }

    function _creditFee(address from, address to, Kind kind, uint256 amount, uint256 fee) private {
        address collector = feeCollector;
        uint256 c = _holders[collector];
        if (_role(c) == 0) revert AccountNotAllowed(collector);
        if (c & FROZEN != 0) revert AccountFrozen(collector);
        unchecked {
            _holders[collector] = c + fee;
        }
        _logTransfer(from, collector, fee);
        emit FeeCharged(from, to, kind, amount, fee);
    }

    /// @dev The Transfer log of a released hold or a fee, in one place: with one more `emit
    ///      Transfer` the compiler copies the topic from code in `_pay` too (see
    ///      NOT_TRANSFER_EVENT), which costs every payment about ten opcodes.
    function _logTransfer(address from, address to, uint256 amount) private {
        emit Transfer(from, to, amount);
    }

    function _spendAllowance(address owner, address spender, uint256 value) private {
        uint256 current = _allowances[owner][spender];
        if (current == type(uint256).max) return;
        if (current < value) revert ERC20InsufficientAllowance(spender, current, value);
        unchecked {
            _allowances[owner][spender] = current - value;
        }
    }

    /// @dev The fee schedule's formula on a packed fee word (as `_pay` computes it).
    function _feeFrom(uint256 word, uint256 amount) private pure returns (uint256 fee) {
        uint256 cap = word >> FEE_CAP_SHIFT;
        if (cap == 0) return 0;
        fee = (amount * uint16(word)) / 10_000 + ((word >> 16) & FEE_FIXED);
        if (fee > cap) fee = cap;
    }

    /// @dev Today's total from a holder word's spending bits (see `_pay`).
    function _spentToday(uint256 holder) private view returns (uint256) {
        uint256 spending = holder >> SPENDING_SHIFT;
        uint256 today = (block.timestamp / 1 days) << DAY_SHIFT;
        return spending < today ? 0 : spending - today;
    }

    function _role(uint256 holder) private pure returns (uint256) {
        return (holder >> ROLE_SHIFT) & 0xf;
    }

    function _sync(address account, Role role, uint8 tier) private {
        _holders[account] = _withActive(
            (_holders[account] & ~ROLE_TIER) | (uint256(role) << ROLE_SHIFT) | (uint256(tier) << TIER_SHIFT)
        );
        emit AccountSynced(account, role, tier);
    }

    /// @dev The holder word with its `ACTIVE` bit recomputed from its role and frozen bits.
    function _withActive(uint256 holder) private pure returns (uint256) {
        bool active = _role(holder) != 0 && holder & FROZEN == 0;
        return active ? holder | ACTIVE : holder & ~ACTIVE;
    }

    function _requireNotPaused() private view {
        if (_config & PAUSED != 0) revert EnforcedPause();
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
        uint256 review = _limits[tier] & (REVIEW << REVIEW_SHIFT);
        if (review == 0) review = REVIEW << REVIEW_SHIFT; // first configured: no review
        _limits[tier] = (uint256(l.perPayment) << 160) | review | l.daily;
        emit TierLimitsSet(tier, l.perPayment, l.daily);
    }

    function _setReviewThreshold(uint8 tier, uint64 threshold) private {
        uint256 review = threshold == 0 ? REVIEW : threshold;
        _limits[tier] = (_limits[tier] & ~(REVIEW << REVIEW_SHIFT)) | (review << REVIEW_SHIFT);
        emit ReviewThresholdSet(tier, threshold);
    }

    function _setReviewWindow(uint64 seconds_) private {
        reviewWindow = seconds_;
        emit ReviewWindowSet(seconds_);
    }

    function _setFee(Kind kind, Fee memory f) private {
        if (f.bps > MAX_FEE_BPS || (kind == Kind.Internal && f.cap != 0)) revert InvalidFee(kind);
        _feeWords[uint256(kind)] = uint256(f.bps) | (uint256(f.fixedFee) << 16) | (uint256(f.cap) << FEE_CAP_SHIFT);
        emit FeeSet(kind, f.bps, f.fixedFee, f.cap);
    }

    function _setFeeCollector(address collector) private {
        if (collector == address(0)) revert InvalidCollector(collector);
        feeCollector = collector;
        emit FeeCollectorSet(collector);
    }

    function _setPoints(address points_) private {
        points = points_;
        emit PointsSet(points_);
    }

    function _setPointsRate(uint16 rateBps) private {
        if (rateBps > MAX_POINTS_RATE_BPS) revert InvalidRate(rateBps);
        _config = (_config & ~RATE) | rateBps;
        emit PointsRateSet(rateBps);
    }
}
