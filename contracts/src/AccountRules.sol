// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {AdminGroup} from "./AdminGroup.sol";

/// @notice What an account may do. `None` means "not allowed to transact". `System` marks a
///         settlement contract the bank deployed (escrow, netting): it holds and pays out funds
///         that were limit-checked on their way in, and never signs a transaction.
enum Role {
    None,
    Admin,
    Issuer,
    Compliance,
    Enterprise,
    Auditor,
    Customer,
    System
}

/// @notice A contract that keeps its own copy of accounts' roles and tiers (the wallet token,
///         whose payment path cannot afford a call here on every transfer). AccountRules calls
///         it in the same transaction as every change, so the copy is never stale.
interface IAccountListener {
    /// @notice `account` now has `role` and `tier` (`Role.None` and 0: removed). Must not revert
    ///         for AccountRules' own calls, or it blocks the change.
    function syncAccount(address account, Role role, uint8 tier) external;
}

/// @title AccountRules
/// @notice The accounts allowed to transact on Tally, each with one role and a KYC tier. The
///         node asks `isAllowed(sender)` at txpool admission and at block validation; the
///         wallet token and settlement contracts read roles and tiers from here, so this is the
///         single source of truth for who is who.
/// @dev No personal data on chain: an account is an address, a role, a tier and at most a salted
///      hash (`kycRef`) pointing at the bank's own KYC record. Only the AdminGroup contract can
///      change the list; the constructor takes the initial list so genesis can deploy it.
///      Listeners (`IAccountListener`) hear every role and tier change as it happens; one that
///      has no code yet (genesis deploys the rules before the token) is skipped, and copies the
///      whole list from `accounts()` in its own constructor. One added later is first sent every
///      account ever listed (removed ones as `None`), so whatever copy it made catches up.
contract AccountRules {
    using EnumerableSet for EnumerableSet.AddressSet;

    struct Account {
        Role role;
        uint8 tier;
        bytes32 kycRef;
    }

    /// @notice The only address allowed to change the rules.
    address public immutable adminGroup;

    EnumerableSet.AddressSet private _listed;
    mapping(address => Account) private _accounts;
    EnumerableSet.AddressSet private _listeners;
    /// @dev Every account ever listed, removed ones included: what a late listener is sent.
    EnumerableSet.AddressSet private _known;

    event AccountSet(address indexed account, Role role, uint8 tier, bytes32 kycRef);
    event AccountRemoved(address indexed account);
    event ListenerAdded(address indexed listener);
    event ListenerRemoved(address indexed listener);

    error NotAdminGroup(address caller);
    error AdminGroupNotContract(address adminGroup);
    error InvalidAccount(address account);
    /// @notice `Role.None` is not assigned; remove the account instead.
    error InvalidRole(address account);
    error AccountNotListed(address account);
    /// @notice Refused so the group can never lock its own admins out of transacting.
    error AccountIsGroupAdmin(address account);
    error LengthMismatch();
    error ListenerNotContract(address listener);
    error AlreadyListening(address listener);
    error NotListening(address listener);

    modifier onlyAdminGroup() {
        if (msg.sender != adminGroup) revert NotAdminGroup(msg.sender);
        _;
    }

    /// @param adminGroup_ the deployed AdminGroup (deploy it first)
    /// @param initialAccounts initial accounts, with their `roles` and `tiers` at the same index
    /// @param listeners_ contracts that keep a copy (the wallet token); they may be deployed later
    constructor(
        address adminGroup_,
        address[] memory initialAccounts,
        Role[] memory roles,
        uint8[] memory tiers,
        address[] memory listeners_
    ) {
        if (adminGroup_.code.length == 0) revert AdminGroupNotContract(adminGroup_);
        adminGroup = adminGroup_;
        for (uint256 i = 0; i < listeners_.length; ++i) {
            if (!_listeners.add(listeners_[i])) revert AlreadyListening(listeners_[i]);
            emit ListenerAdded(listeners_[i]);
        }
        uint256 n = initialAccounts.length;
        if (roles.length != n || tiers.length != n) revert LengthMismatch();
        for (uint256 i = 0; i < n; ++i) {
            _set(initialAccounts[i], roles[i], tiers[i], bytes32(0));
        }
    }

    // ---------------------------------------------------------------- reads (node, contracts)

    /// @notice Whether `account` may transact (the node's admission and block check).
    function isAllowed(address account) external view returns (bool) {
        return _accounts[account].role != Role.None;
    }

    function roleOf(address account) external view returns (Role) {
        return _accounts[account].role;
    }

    function tierOf(address account) external view returns (uint8) {
        return _accounts[account].tier;
    }

    /// @notice Role and tier in one call (one storage slot), for the token's payment path.
    function roleAndTier(address account) external view returns (Role role, uint8 tier) {
        Account storage a = _accounts[account];
        return (a.role, a.tier);
    }

    function accountOf(address account) external view returns (Role role, uint8 tier, bytes32 kycRef) {
        Account storage a = _accounts[account];
        return (a.role, a.tier, a.kycRef);
    }

    /// @notice Every allowed account (for auditors and the explorer).
    function accounts() external view returns (address[] memory) {
        return _listed.values();
    }

    function accountCount() external view returns (uint256) {
        return _listed.length();
    }

    /// @notice The contracts told of every change.
    function listeners() external view returns (address[] memory) {
        return _listeners.values();
    }

    // ---------------------------------------------------------------- changes (admin group only)

    /// @notice Add an account or change its role, tier and KYC reference.
    function setAccount(address account, Role role, uint8 tier, bytes32 kycRef) external onlyAdminGroup {
        _set(account, role, tier, kycRef);
    }

    /// @notice Onboard or update many accounts in one proposal.
    function setAccounts(
        address[] calldata accounts_,
        Role[] calldata roles,
        uint8[] calldata tiers,
        bytes32[] calldata kycRefs
    ) external onlyAdminGroup {
        uint256 n = accounts_.length;
        if (roles.length != n || tiers.length != n || kycRefs.length != n) revert LengthMismatch();
        for (uint256 i = 0; i < n; ++i) {
            _set(accounts_[i], roles[i], tiers[i], kycRefs[i]);
        }
    }

    /// @notice Stop an account from transacting. History made before stays valid: the node
    ///         checks each block against the rules as of its parent.
    function removeAccount(address account) external onlyAdminGroup {
        if (!_listed.contains(account)) revert AccountNotListed(account);
        if (AdminGroup(adminGroup).isAdmin(account)) revert AccountIsGroupAdmin(account);
        _listed.remove(account);
        delete _accounts[account];
        emit AccountRemoved(account);
        _notify(account, Role.None, 0);
    }

    /// @notice Tell `listener` of every change from now on; it is first sent every account
    ///         ever listed (removed ones as `None`), so a copy it made earlier catches up.
    function addListener(address listener) external onlyAdminGroup {
        if (listener.code.length == 0) revert ListenerNotContract(listener);
        if (!_listeners.add(listener)) revert AlreadyListening(listener);
        emit ListenerAdded(listener);
        uint256 n = _known.length();
        for (uint256 i = 0; i < n; ++i) {
            address account = _known.at(i);
            Account storage a = _accounts[account];
            IAccountListener(listener).syncAccount(account, a.role, a.tier);
        }
    }

    function removeListener(address listener) external onlyAdminGroup {
        if (!_listeners.remove(listener)) revert NotListening(listener);
        emit ListenerRemoved(listener);
    }

    function _set(address account, Role role, uint8 tier, bytes32 kycRef) private {
        if (account == address(0)) revert InvalidAccount(account);
        if (role == Role.None) revert InvalidRole(account);
        _listed.add(account);
        _known.add(account);
        _accounts[account] = Account(role, tier, kycRef);
        emit AccountSet(account, role, tier, kycRef);
        _notify(account, role, tier);
    }

    /// @dev Listeners without code are not deployed yet (see the contract's notes).
    function _notify(address account, Role role, uint8 tier) private {
        uint256 n = _listeners.length();
        for (uint256 i = 0; i < n; ++i) {
            address listener = _listeners.at(i);
            if (listener.code.length != 0) IAccountListener(listener).syncAccount(account, role, tier);
        }
    }
}
