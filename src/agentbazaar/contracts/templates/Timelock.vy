# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title Timelock: calls scheduled by proposers run only after a minimum delay
@notice snekmate's `timelock_controller` (OpenZeppelin's TimelockController semantics):
        proposers schedule (and cancel) operations, executors run them once their delay has
        passed; the minimum delay changes only through the timelock itself. The deployer
        holds no role; `admin` (optional, the zero address for none) may manage roles.
        Invariants (checked as properties before deployment):
        - an operation cannot run before its delay (at least the minimum) has passed;
        - only proposers schedule or cancel, only executors execute;
        - a delay below the minimum is refused; an operation runs at most once.
"""

from snekmate.auth import access_control

initializes: access_control

from snekmate.governance import timelock_controller

initializes: timelock_controller[access_control := access_control]

exports: timelock_controller.__interface__


@deploy
def __init__(
    minimum_delay_: uint256, proposers_: DynArray[address, 16], executors_: DynArray[address, 16], admin_: address
):
    """
    @param minimum_delay_ Seconds every operation waits at least.
    @param proposers_ Who may schedule and cancel operations (at most 16).
    @param executors_ Who may execute ready operations (at most 16).
    @param admin_ Optional role administrator (the zero address for none).
    """
    assert len(proposers_) > 0, "timelock: no proposer"
    assert len(executors_) > 0, "timelock: no executor"
    access_control.__init__()
    timelock_controller.__init__(minimum_delay_, proposers_, executors_, admin_)
