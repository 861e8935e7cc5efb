// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title AdminGroup
/// @notice M-of-N governance for Tally's permissioning and policy contracts: an admin proposes a
///         call, other admins approve it, and the call runs once `threshold` admins have approved.
/// @dev Why a contract and not a key: the permission contracts accept changes only from this
///      address, so every change to who may transact is an on-chain proposal with recorded
///      approvals. Changes to the group itself (admins, threshold) are proposals to this contract.
///      Approvals are counted over the *current* admins whenever a proposal is evaluated, so
///      removing an admin also withdraws their pending approvals, and a new threshold applies to
///      proposals still pending. The constructor takes everything it needs so genesis can deploy
///      it by running its creation code (`msg.sender` plays no role).
contract AdminGroup {
    struct Proposal {
        address proposer;
        address target;
        bool executed;
        bool cancelled;
        bytes data;
    }

    /// @notice Upper bound on the group size, which keeps approval counting a short loop.
    uint256 public constant MAX_ADMINS = 32;

    address[] private _admins;
    /// @notice Whether an address is currently one of the admins.
    mapping(address => bool) public isAdmin;
    /// @notice Approvals needed for a proposal to execute (M of N).
    uint256 public threshold;
    /// @notice Number of proposals ever made; ids run from 1 to this value.
    uint256 public proposalCount;
    mapping(uint256 => Proposal) private _proposals;
    /// @notice Whether `admin` has approved proposal `id` (approvals of removed admins are kept
    ///         here but no longer counted).
    mapping(uint256 => mapping(address => bool)) public hasApproved;

    event ProposalCreated(uint256 indexed id, address indexed proposer, address indexed target, bytes data);
    event ProposalApproved(uint256 indexed id, address indexed admin, uint256 approvals);
    event ApprovalRevoked(uint256 indexed id, address indexed admin, uint256 approvals);
    event ProposalExecuted(uint256 indexed id, bytes result);
    event ProposalCancelled(uint256 indexed id, address indexed by);
    event AdminAdded(address indexed admin);
    event AdminRemoved(address indexed admin);
    event ThresholdChanged(uint256 threshold);

    error NotAdmin(address account);
    /// @notice Group changes can only come from an executed proposal of this group.
    error OnlyByProposal(address caller);
    error UnknownProposal(uint256 id);
    error ProposalClosed(uint256 id);
    error AlreadyApproved(uint256 id, address admin);
    error NotApproved(uint256 id, address admin);
    error NotEnoughApprovals(uint256 id, uint256 approvals, uint256 threshold);
    error NotProposer(uint256 id, address caller);
    /// @notice The proposed call reverted; `reason` is the target's revert data.
    error ProposalFailed(uint256 id, bytes reason);
    error TargetNotContract(address target);
    error InvalidThreshold(uint256 threshold, uint256 admins);
    error AlreadyAdmin(address account);
    error TooManyAdmins(uint256 max);
    error ZeroAddress();

    modifier onlyAdmin() {
        if (!isAdmin[msg.sender]) revert NotAdmin(msg.sender);
        _;
    }

    modifier onlySelf() {
        if (msg.sender != address(this)) revert OnlyByProposal(msg.sender);
        _;
    }

    /// @param admins_ the initial admins (distinct, non-zero)
    /// @param threshold_ approvals needed, 1 <= threshold_ <= admins_.length
    constructor(address[] memory admins_, uint256 threshold_) {
        for (uint256 i = 0; i < admins_.length; ++i) {
            _addAdmin(admins_[i]);
        }
        _setThreshold(threshold_);
    }

    // ---------------------------------------------------------------- proposals

    /// @notice Propose that this group calls `target` with `data`; the proposer's approval
    ///         counts, so with a threshold of 1 the call runs at once.
    function propose(address target, bytes calldata data) external onlyAdmin returns (uint256 id) {
        if (target.code.length == 0) revert TargetNotContract(target);
        id = ++proposalCount;
        _proposals[id] = Proposal(msg.sender, target, false, false, data);
        emit ProposalCreated(id, msg.sender, target, data);
        _approve(id);
    }

    /// @notice Approve a pending proposal; the approval that reaches the threshold executes it
    ///         (and reverts, recording nothing, if the proposed call reverts).
    function approve(uint256 id) external onlyAdmin {
        _requirePending(id);
        _approve(id);
    }

    /// @notice Withdraw one's approval of a pending proposal.
    function revokeApproval(uint256 id) external onlyAdmin {
        _requirePending(id);
        if (!hasApproved[id][msg.sender]) revert NotApproved(id, msg.sender);
        hasApproved[id][msg.sender] = false;
        emit ApprovalRevoked(id, msg.sender, approvals(id));
    }

    /// @notice Execute a pending proposal that has enough approvals, e.g. after the threshold
    ///         was lowered or an approving admin's removal changed the count.
    function execute(uint256 id) external onlyAdmin {
        _requirePending(id);
        uint256 count = approvals(id);
        if (count < threshold) revert NotEnoughApprovals(id, count, threshold);
        _execute(id);
    }

    /// @notice The proposer withdraws a pending proposal.
    function cancel(uint256 id) external onlyAdmin {
        _requirePending(id);
        if (_proposals[id].proposer != msg.sender) revert NotProposer(id, msg.sender);
        _proposals[id].cancelled = true;
        emit ProposalCancelled(id, msg.sender);
    }

    // ---------------------------------------------------------------- group changes (by proposal)

    function addAdmin(address admin) external onlySelf {
        _addAdmin(admin);
    }

    /// @notice Remove an admin; refused if fewer admins than the threshold would remain.
    function removeAdmin(address admin) external onlySelf {
        if (!isAdmin[admin]) revert NotAdmin(admin);
        uint256 n = _admins.length;
        if (n - 1 < threshold) revert InvalidThreshold(threshold, n - 1);
        for (uint256 i = 0; i < n; ++i) {
            if (_admins[i] == admin) {
                _admins[i] = _admins[n - 1];
                _admins.pop();
                break;
            }
        }
        isAdmin[admin] = false;
        emit AdminRemoved(admin);
    }

    function setThreshold(uint256 threshold_) external onlySelf {
        _setThreshold(threshold_);
    }

    // ---------------------------------------------------------------- views

    function admins() external view returns (address[] memory) {
        return _admins;
    }

    /// @notice Approvals of proposal `id` by current admins.
    function approvals(uint256 id) public view returns (uint256 count) {
        uint256 n = _admins.length;
        for (uint256 i = 0; i < n; ++i) {
            if (hasApproved[id][_admins[i]]) ++count;
        }
    }

    function proposal(uint256 id)
        external
        view
        returns (address proposer, address target, bytes memory data, bool executed, bool cancelled, uint256 approvalCount)
    {
        Proposal storage p = _proposals[id];
        if (p.proposer == address(0)) revert UnknownProposal(id);
        return (p.proposer, p.target, p.data, p.executed, p.cancelled, approvals(id));
    }

    // ---------------------------------------------------------------- internals

    function _approve(uint256 id) private {
        if (hasApproved[id][msg.sender]) revert AlreadyApproved(id, msg.sender);
        hasApproved[id][msg.sender] = true;
        uint256 count = approvals(id);
        emit ProposalApproved(id, msg.sender, count);
        if (count >= threshold) _execute(id);
    }

    function _execute(uint256 id) private {
        Proposal storage p = _proposals[id];
        p.executed = true; // before the call: a re-entering approve/execute finds it closed
        (bool ok, bytes memory result) = p.target.call(p.data);
        if (!ok) revert ProposalFailed(id, result);
        emit ProposalExecuted(id, result);
    }

    function _requirePending(uint256 id) private view {
        Proposal storage p = _proposals[id];
        if (p.proposer == address(0)) revert UnknownProposal(id);
        if (p.executed || p.cancelled) revert ProposalClosed(id);
    }

    function _addAdmin(address admin) private {
        if (admin == address(0)) revert ZeroAddress();
        if (isAdmin[admin]) revert AlreadyAdmin(admin);
        if (_admins.length >= MAX_ADMINS) revert TooManyAdmins(MAX_ADMINS);
        isAdmin[admin] = true;
        _admins.push(admin);
        emit AdminAdded(admin);
    }

    function _setThreshold(uint256 threshold_) private {
        if (threshold_ == 0 || threshold_ > _admins.length) {
            revert InvalidThreshold(threshold_, _admins.length);
        }
        threshold = threshold_;
        emit ThresholdChanged(threshold_);
    }
}
