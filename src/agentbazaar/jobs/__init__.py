"""Trust between agents: escrowed jobs (ERC-8183 draft semantics), disputes decided by a
committee of staked validators, and stake.

- ``JobMarket`` (``market``): create, fund (EIP-3009 inside ``Wallet.spend``), submit, complete
  or reject (or a validator's ValidationRegistry verdict), refunds, disputes and votes.
- ``Staking`` (``staking``): bond (EIP-3009 inside ``Wallet.spend``), unbond, withdraw.
- ``model``: the records (``JobInfo``, ``DisputeInfo``, ``StakeInfo``) and the pure helpers
  shared with the contracts (nonces, vote commitments, input parsing).
- ``errors``: ``JobError`` and the typed refusals the contracts' revert reasons map to.

The contracts (``JobEscrow.vy``, ``StakeRegistry.vy``, ``FeedbackGate.vy``) document the rules.
"""

from agentbazaar.jobs._onchain import TxResult
from agentbazaar.jobs.errors import (
    AlreadyDone,
    JobError,
    JobInputError,
    JobRefused,
    NotAllowed,
    StakeLocked,
    TooEarly,
    TooLate,
    WrongState,
)
from agentbazaar.jobs.market import JobMarket, MarketTerms
from agentbazaar.jobs.model import (
    DisputeInfo,
    JobInfo,
    StakeInfo,
    parse_deliverable,
    parse_duration,
    parse_roles,
)
from agentbazaar.jobs.staking import Staking

__all__ = [
    "AlreadyDone",
    "DisputeInfo",
    "JobError",
    "JobInfo",
    "JobInputError",
    "JobMarket",
    "JobRefused",
    "MarketTerms",
    "NotAllowed",
    "StakeInfo",
    "StakeLocked",
    "Staking",
    "TooEarly",
    "TooLate",
    "TxResult",
    "WrongState",
    "parse_deliverable",
    "parse_duration",
    "parse_roles",
]
