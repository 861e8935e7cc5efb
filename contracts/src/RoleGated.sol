// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccountRules, Role} from "./AccountRules.sol";

/// @title RoleGated
/// @notice Base for contracts whose callers are authorised by their role in AccountRules, so
///         roles live in one place and not in a second access-control list per contract.
abstract contract RoleGated {
    /// @notice Where roles and tiers are read from.
    AccountRules public immutable accountRules;

    /// @notice The caller's role (given) does not permit this call.
    error UnauthorizedRole(address account, Role role);
    error AccountRulesNotContract(address accountRules);

    constructor(AccountRules rules) {
        if (address(rules).code.length == 0) revert AccountRulesNotContract(address(rules));
        accountRules = rules;
    }

    modifier onlyRole(Role role) {
        Role has = accountRules.roleOf(msg.sender);
        if (has != role) revert UnauthorizedRole(msg.sender, has);
        _;
    }

    /// @notice Policy changes: the admin group (M-of-N, by proposal) or an account with `role`.
    modifier onlyGroupOr(Role role) {
        if (msg.sender != accountRules.adminGroup()) {
            Role has = accountRules.roleOf(msg.sender);
            if (has != role) revert UnauthorizedRole(msg.sender, has);
        }
        _;
    }
}
