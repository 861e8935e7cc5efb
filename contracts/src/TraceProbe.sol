// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title TraceChild
/// @notice The callee `TraceProbe` calls, creates and destroys, so that a trace has every
///         kind of frame to show.
contract TraceChild {
    /// @notice Emitted by `ping`, inside a nested call.
    event Ping(uint256 value);

    uint256 public count;

    constructor() payable {}

    /// @notice Adds `v` to `count`, logs it and returns twice `v` (payable: `TraceProbe`
    ///         delegatecalls it from a payable function).
    function ping(uint256 v) external payable returns (uint256) {
        count += v;
        emit Ping(v);
        return v * 2;
    }

    /// @notice Reverts with "child: nope" unless `v` is zero.
    function fail(uint256 v) external pure {
        require(v == 0, "child: nope");
    }

    /// @notice Self-destructs, sending this contract's balance to `to`.
    function destroy(address payable to) external {
        selfdestruct(to);
    }
}

/// @title TraceProbe
/// @notice One call that makes every kind of frame a tracer reports: nested calls with logs, a
///         revert caught inside a call, DELEGATECALL and STATICCALL, the sha256 and ecrecover
///         precompiles, CREATE (with value), CREATE2, and SELFDESTRUCT.
contract TraceProbe {
    /// @notice Emitted at the end of `exercise`.
    event Done(address indexed twin, bytes32 digest);

    uint256 public pings;
    TraceChild public child;

    constructor() {
        child = new TraceChild();
    }

    /// @notice Exercises every frame kind; `salt` picks the CREATE2 address.
    function exercise(bytes32 salt) external payable returns (bytes32) {
        uint256 doubled = child.ping(21);
        try child.fail(1) {} catch {}
        (bool ok, ) = address(child).delegatecall(abi.encodeCall(TraceChild.ping, (1)));
        require(ok, "probe: delegatecall");
        bytes32 digest = sha256(abi.encode(doubled));
        address signer = ecrecover(digest, 27, bytes32(uint256(1)), bytes32(uint256(2)));
        TraceChild made = new TraceChild{value: msg.value}();
        TraceChild twin = new TraceChild{salt: salt}();
        made.destroy(payable(msg.sender));
        pings = twin.count() + pings;
        emit Done(address(twin), digest);
        return keccak256(abi.encode(signer, made));
    }

    /// @notice Calls the child, then reverts with "probe: top".
    function failing() external {
        child.ping(1);
        revert("probe: top");
    }
}
