// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";

/// @title NodeRules
/// @notice The node identities (the 20-byte address of each node's key) allowed to join the
///         network. Nodes read `nodes()` at their head to decide which p2p links to keep, and
///         drop a peer that is no longer listed.
/// @dev Changed only by the AdminGroup contract; the constructor takes the initial list so
///      genesis can deploy it.
contract NodeRules {
    using EnumerableSet for EnumerableSet.AddressSet;

    /// @notice The only address allowed to change the list.
    address public immutable adminGroup;

    EnumerableSet.AddressSet private _nodes;

    event NodeAdded(address indexed node);
    event NodeRemoved(address indexed node);

    error NotAdminGroup(address caller);
    error AdminGroupNotContract(address adminGroup);
    error InvalidNode(address node);
    error NodeAlreadyAllowed(address node);
    error NodeNotAllowed(address node);
    /// @notice Refused: an empty list would leave no node able to connect to any other.
    error LastNode(address node);

    modifier onlyAdminGroup() {
        if (msg.sender != adminGroup) revert NotAdminGroup(msg.sender);
        _;
    }

    constructor(address adminGroup_, address[] memory initialNodes) {
        if (adminGroup_.code.length == 0) revert AdminGroupNotContract(adminGroup_);
        adminGroup = adminGroup_;
        for (uint256 i = 0; i < initialNodes.length; ++i) {
            _add(initialNodes[i]);
        }
    }

    function isNodeAllowed(address node) external view returns (bool) {
        return _nodes.contains(node);
    }

    function nodes() external view returns (address[] memory) {
        return _nodes.values();
    }

    function addNode(address node) external onlyAdminGroup {
        _add(node);
    }

    function removeNode(address node) external onlyAdminGroup {
        if (!_nodes.contains(node)) revert NodeNotAllowed(node);
        if (_nodes.length() == 1) revert LastNode(node);
        _nodes.remove(node);
        emit NodeRemoved(node);
    }

    function _add(address node) private {
        if (node == address(0)) revert InvalidNode(node);
        if (!_nodes.add(node)) revert NodeAlreadyAllowed(node);
        emit NodeAdded(node);
    }
}
