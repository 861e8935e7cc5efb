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

/// @title AccountRules
/// @notice The accounts allowed to transact on Tally, each with one role and a KYC tier. The
///         node asks `isAllowed(sender)` at txpool admission and at block validation; the
///         wallet token and settlement contracts read roles and tiers from here, so this is the
///         single source of truth for who is who.
/// @dev No personal data on chain: an account is an address, a role, a tier and at most a salted
///      hash (`kycRef`) pointing at the bank's own KYC record. Only the AdminGroup contract can
///      change the list; the constructor takes the initial list so genesis can deploy it.
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

    event AccountSet(address indexed account, Role role, uint8 tier, bytes32 kycRef);
    event AccountRemoved(address indexed account);

    error NotAdminGroup(address caller);
    error AdminGroupNotContract(address adminGroup);
    error InvalidAccount(address account);
    /// @notice `Role.None` is not assigned; remove the account instead.
    error InvalidRole(address account);
    error AccountNotListed(address account);
    /// @notice Refused so the group can never lock its own admins out of transacting.
    error AccountIsGroupAdmin(address account);
    error LengthMismatch();

    modifier onlyAdminGroup() {
        if (msg.sender != adminGroup) revert NotAdminGroup(msg.sender);
        _;
    }

    /// @param adminGroup_ the deployed AdminGroup (deploy it first)
    /// @param initialAccounts initial accounts, with their `roles` and `tiers` at the same index
    constructor(address adminGroup_, address[] memory initialAccounts, Role[] memory roles, uint8[] memory tiers) {
        if (adminGroup_.code.length == 0) revert AdminGroupNotContract(adminGroup_);
        adminGroup = adminGroup_;
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

    /// @notice A payment's payer role and tier and payee role in one call: the wallet token
    ///         asks this on every transfer, and each call costs the node real time.
    function paymentRoles(address payer, address payee) external view returns (Role, uint8, Role) {
        Account storage a = _accounts[payer];
        return (a.role, a.tier, _accounts[payee].role);
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
    }

    function _set(address account, Role role, uint8 tier, bytes32 kycRef) private {
        if (account == address(0)) revert InvalidAccount(account);
        if (role == Role.None) revert InvalidRole(account);
        _listed.add(account);
        _accounts[account] = Account(role, tier, kycRef);
        emit AccountSet(account, role, tier, kycRef);
    }
}
