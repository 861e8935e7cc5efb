// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title Tally Dev Token
/// @notice A plain 18-decimal ERC-20 for development, benchmarks and client end-to-end tests.
/// @dev The whole initial supply goes to the deployer so a single dev account can fund others.
contract DevToken is ERC20 {
    constructor(uint256 initialSupply) ERC20("Tally Dev Token", "TDT") {
        _mint(msg.sender, initialSupply);
    }
}
