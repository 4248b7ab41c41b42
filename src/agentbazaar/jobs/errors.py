"""Errors of the job layer, and the one place contract revert reasons become them.

PaymentError
└── JobError                 409  anything about escrowed jobs, disputes and stake
    ├── JobInputError        400  bad input caught before anything is signed or sent
    └── JobRefused           409  the contract refuses the call (simulated first: nothing signed)
        ├── NotAllowed       the caller has no role for it (not the evaluator, not on the committee)
        ├── WrongState       the job or dispute is not in the state the call needs
        ├── AlreadyDone      it happened already (funding twice, a validator voting twice)
        ├── TooEarly         a window has not opened yet (seed block not mined, not expired)
        ├── TooLate          a window has closed (expired, dispute window closed)
        └── StakeLocked      stake in an open dispute cannot be unbonded or withdrawn

Every contract revert carries a reason string ("job: ...", "dispute: ...", "stake: ...",
"gate: ..."); ``refusal`` maps it to one of the classes above with a one-line message that names
the action and the job: ``cannot fund job 7: already funded``.
"""

from __future__ import annotations

from typing import Any

from agentbazaar.errors import PaymentError, TransactionReverted


class JobError(PaymentError):
    http_status = 409


class JobInputError(JobError):
    http_status = 400


class JobRefused(JobError):
    """The contract refused; ``reason`` is its revert reason string."""

    def __init__(self, message: str, *, reason: str, **fields: Any) -> None:
        super().__init__(message, reason=reason, **fields)
        self.reason = reason


class NotAllowed(JobRefused):
    pass


class WrongState(JobRefused):
    pass


class AlreadyDone(JobRefused):
    pass


class TooEarly(JobRefused):
    pass


class TooLate(JobRefused):
    pass


class StakeLocked(JobRefused):
    pass


# checked in order: the first marker found in the reason picks the class
_MARKERS: tuple[tuple[str, type[JobRefused]], ...] = (
    ("in an open dispute", StakeLocked),
    ("already", AlreadyDone),
    ("window closed", TooLate),
    ("period over", TooLate),
    ("expired", TooLate),
    ("after expiry", TooLate),
    ("not expired yet", TooEarly),
    ("not mined yet", TooEarly),
    ("not answered yet", TooEarly),
    ("not drawn yet", TooEarly),
    ("still open", TooEarly),
    ("still unbonding", TooEarly),
    ("reveals open", TooEarly),
    ("may dispute", TooEarly),
    ("only ", NotAllowed),
    ("not on this committee", NotAllowed),
    ("not the payer", NotAllowed),
    ("self-feedback", NotAllowed),
)


def refusal_class(reason: str) -> type[JobRefused]:
    lowered = reason.lower()
    for marker, cls in _MARKERS:
        if marker in lowered:
            return cls
    if lowered.startswith(("job: not ", "job: nothing", "job: cannot", "dispute: no ")):
        return WrongState
    return JobRefused


def refusal(action: str, exc: TransactionReverted, **fields: Any) -> JobRefused:
    """The typed error for a reverted (or refused in simulation) call doing ``action``."""
    reason = str(exc.fields.get("reason") or exc.message)
    text = reason.split(": ", 1)[1] if reason.startswith(("job: ", "dispute: ", "stake: ", "gate: ")) else reason  # fmt: skip
    cls = refusal_class(reason)
    return cls(f"cannot {action}: {text}", reason=reason, **fields)
