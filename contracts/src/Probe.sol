// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Probe
/// @notice Exercises what a node's RPC must report faithfully: revert strings, custom errors,
///         indexed events, storage writes, views and gas-heavy loops.
contract Probe {
    /// @notice Raised by `failCustom` so clients can test custom-error decoding.
    error ProbeError(uint256 code);

    /// @notice Emitted by `poke`; `who` is indexed so log filters by topic can be tested.
    event Poked(address indexed who, uint256 value);

    uint256 private stored;

    /// @notice Always reverts with the reason string "probe: nope" (Error(string)).
    function failRequire() external pure {
        require(false, "probe: nope");
    }

    /// @notice Always reverts with the custom error ProbeError(code).
    function failCustom(uint256 code) external pure {
        revert ProbeError(code);
    }

    /// @notice Stores `newValue` and emits Poked(msg.sender, newValue).
    function poke(uint256 newValue) external {
        stored = newValue;
        emit Poked(msg.sender, newValue);
    }

    /// @notice Returns the value last stored by `poke`.
    function value() external view returns (uint256) {
        return stored;
    }

    /// @notice Burns gas: n iterations of a storage-free loop; returns an accumulator so the
    ///         optimizer cannot drop the loop.
    function spin(uint256 n) external returns (uint256 acc) {
        for (uint256 i = 0; i < n; ++i) {
            acc = uint256(keccak256(abi.encode(acc, i)));
        }
        stored = acc;
    }
}
