"""Jobs as plain data: states, the job and dispute records, and the pure helpers the client and
the contracts share (nonces, vote commitments, the EIP-3009 message that funds a job).

Nothing here talks to a chain; ``JobMarket`` (``agentbazaar.jobs.market``) does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from agentbazaar import units
from agentbazaar.errors import DurationError
from agentbazaar.jobs.errors import JobInputError

OPEN, FUNDED, SUBMITTED, COMPLETED, REJECTED, EXPIRED, DISPUTED = range(1, 8)
STATUS_NAMES = {
    OPEN: "open",
    FUNDED: "funded",
    SUBMITTED: "submitted",
    COMPLETED: "completed",
    REJECTED: "rejected",
    EXPIRED: "expired",
    DISPUTED: "disputed",
}
VOTE_PROVIDER, VOTE_CLIENT = 1, 2
OUTCOMES = {1: "provider", 2: "client", 3: "void"}
BPS = 10_000
ROLE_PROVIDER, ROLE_VALIDATOR = 1, 2
ROLE_NAMES = {"provider": ROLE_PROVIDER, "validator": ROLE_VALIDATOR, "both": 3}

FUND_TAG = keccak(text="agentbazaar.jobs.fund")
DISPUTE_TAG = keccak(text="agentbazaar.jobs.dispute")
VERDICT_TAG = keccak(text="agentbazaar.jobs.verdict")
BOND_TAG = keccak(text="agentbazaar.stake.bond")

RECEIVE_TYPES: dict[str, list[dict[str, str]]] = {
    "ReceiveWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ]
}

_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


# ---- records ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobInfo:
    """One job as the escrow reports it, and what that means at time ``now``."""

    job_id: int
    client: str
    provider: str
    evaluator: str
    budget: int
    expired_at: int
    decided_at: int
    status: int
    partial: bool
    held: int
    deliverable: bytes
    dispute_window_end: int
    now: int

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, f"unknown({self.status})")

    @property
    def state(self) -> str:
        """The status, with what time changed: a funded or submitted job past its expiry is
        "expired" (a submitted one "unanswered" while the provider may still dispute it), a
        rejected one still held is "rejected (disputable)"."""
        past = self.now >= self.expired_at
        if self.status == FUNDED and past:
            return "expired"
        if self.status == SUBMITTED and past:
            return "unanswered" if self.now < self.dispute_window_end else "expired"
        if self.status == REJECTED and self.held > 0:
            return "rejected (disputable)" if self.now < self.dispute_window_end else "rejected"
        return self.status_name

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(
            id=self.job_id,
            state=self.state,
            status=self.status_name,
            budget=str(self.budget),
            held=str(self.held),
            deliverable="0x" + self.deliverable.hex() if any(self.deliverable) else None,
        )
        del out["job_id"]
        return out


@dataclass(frozen=True)
class DisputeInfo:
    job_id: int
    seed_block: int
    opened_at: int
    commit_end: int
    reveal_end: int
    committee: tuple[str, ...]
    commits: int
    for_provider: int
    for_client: int

    @property
    def drawn(self) -> bool:
        return bool(self.committee)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["committee"] = list(self.committee)
        return out


@dataclass(frozen=True)
class StakeInfo:
    account: str
    bonded: int
    unbonding: int
    unlock_at: int
    roles: int
    locks: int
    provider: bool
    validator: bool

    @property
    def role_names(self) -> list[str]:
        return [name for name, bit in (("provider", 1), ("validator", 2)) if self.roles & bit]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(bonded=str(self.bonded), unbonding=str(self.unbonding), roles=self.role_names)
        return out


def job_from_tuple(job_id: int, raw: Sequence[Any], window_end: int, now: int) -> JobInfo:
    """``getJob`` -> ``JobInfo`` (fields in the contract's ``Job`` struct order)."""
    client, provider, evaluator, budget, expired_at, decided_at, status, partial, held, deliv = raw
    return JobInfo(
        job_id=job_id,
        client=to_checksum_address(client),
        provider=to_checksum_address(provider),
        evaluator=to_checksum_address(evaluator),
        budget=int(budget),
        expired_at=int(expired_at),
        decided_at=int(decided_at),
        status=int(status),
        partial=bool(partial),
        held=int(held),
        deliverable=bytes(deliv),
        dispute_window_end=int(window_end),
        now=now,
    )


def dispute_from_tuple(job_id: int, raw: Sequence[Any]) -> DisputeInfo:
    seed, opened, commit_end, reveal_end, committee, commits, for_p, for_c = raw
    return DisputeInfo(
        job_id=job_id,
        seed_block=int(seed),
        opened_at=int(opened),
        commit_end=int(commit_end),
        reveal_end=int(reveal_end),
        committee=tuple(to_checksum_address(a) for a in committee),
        commits=int(commits),
        for_provider=int(for_p),
        for_client=int(for_c),
    )


# ---- pure helpers shared with the contracts -------------------------------------------------
def fund_nonce(escrow: str, job_id: int, salt: bytes) -> bytes:
    """The EIP-3009 nonce that lets an authorization fund only job ``job_id`` of ``escrow``."""
    return keccak(abi_encode(["bytes32", "address", "uint256", "bytes32"], [FUND_TAG, escrow, job_id, salt]))  # fmt: skip


def dispute_nonce(escrow: str, job_id: int, salt: bytes) -> bytes:
    return keccak(abi_encode(["bytes32", "address", "uint256", "bytes32"], [DISPUTE_TAG, escrow, job_id, salt]))  # fmt: skip


def bond_nonce(roles: int, salt: bytes) -> bytes:
    return keccak(abi_encode(["bytes32", "uint256", "bytes32"], [BOND_TAG, roles, salt]))


def verdict_request_hash(chain_id: int, escrow: str, job_id: int, deliverable: bytes) -> bytes:
    """The ValidationRegistry request hash whose answer is the verdict on this job's work."""
    return keccak(
        abi_encode(
            ["bytes32", "uint256", "address", "uint256", "bytes32"],
            [VERDICT_TAG, chain_id, escrow, job_id, deliverable],
        )
    )


def vote_commitment(job_id: int, voter: str, vote: int, salt: bytes) -> bytes:
    return keccak(abi_encode(["uint256", "address", "uint8", "bytes32"], [job_id, voter, vote, salt]))  # fmt: skip


def receive_authorization(
    payer: str, to: str, value: int, valid_before: int, nonce: bytes
) -> dict[str, Any]:
    """The ``ReceiveWithAuthorization`` message (valid from the epoch until ``valid_before``)."""
    return {
        "from": to_checksum_address(payer),
        "to": to_checksum_address(to),
        "value": value,
        "validAfter": 0,
        "validBefore": valid_before,
        "nonce": nonce,
    }


def token_domain(raw_eip712_domain: Sequence[Any]) -> dict[str, Any]:
    """The EIP-712 domain from a token's EIP-5267 ``eip712Domain()`` answer."""
    _fields, name, version, chain_id, verifying_contract, _salt, _ext = raw_eip712_domain
    return {
        "name": str(name),
        "version": str(version),
        "chainId": int(chain_id),
        "verifyingContract": to_checksum_address(verifying_contract),
    }


# ---- parsing user input ----------------------------------------------------------------------
def parse_deliverable(text: str) -> bytes:
    """A deliverable reference: a 0x-prefixed 32-byte hash as is, any other text its keccak."""
    if not isinstance(text, str) or not text.strip():
        raise JobInputError("a deliverable is a 0x 32-byte hash or a non-empty text")
    if _HASH.match(text.strip()):
        value = bytes.fromhex(text.strip()[2:])
        if not any(value):
            raise JobInputError("the deliverable hash must not be zero")
        return value
    return keccak(text=text)


def parse_duration(text: str) -> int:
    """Seconds in "90", "90s", "15m", "2h", "3d" ... (``units.parse_duration``), 1 s to a year."""
    try:
        seconds = units.parse_duration(text or "")
    except DurationError as exc:
        raise JobInputError(str(exc)) from exc
    if seconds <= 0 or seconds > 365 * 86_400:
        raise JobInputError(f"a duration is 1 second to 365 days, not {text!r}")
    return seconds


def parse_roles(text: str) -> int:
    roles = ROLE_NAMES.get(text.strip().lower())
    if roles is None:
        raise JobInputError(f"a role is provider, validator or both, not {text!r}")
    return roles


def parse_bps(value: int | str) -> int:
    try:
        bps = int(value)
    except (TypeError, ValueError) as exc:
        raise JobInputError(f"paid share is basis points 1..10000, not {value!r}") from exc
    if not 0 < bps <= BPS:
        raise JobInputError(f"paid share is basis points 1..10000, not {value!r}")
    return bps


def check_vote(vote: int | str) -> int:
    names: Mapping[str, int] = {"provider": VOTE_PROVIDER, "client": VOTE_CLIENT, "1": 1, "2": 2}
    chosen = names.get(str(vote).strip().lower())
    if chosen is None:
        raise JobInputError(f"a vote is provider (1) or client (2), not {vote!r}")
    return chosen
