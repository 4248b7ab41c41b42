"""The job contracts on titanoboa's EVM: the stablecoin, the ERC-8004 registries, the stake
registry, the feedback gate and the job escrow, linked as the suite links them; accounts with
keys (EIP-3009 signatures) and helpers for each step of a job's life."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any

import boa
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from agentbazaar.chain.compiler import CONTRACTS_DIR
from agentbazaar.jobs import model

DAY, HOUR = 86_400, 3_600
USDC = 10**6
FEE = 1 * USDC
PERIODS = (DAY, HOUR, HOUR, HOUR)  # dispute window, draw, commit, reveal
UNBOND = 7 * DAY
MIN_PROVIDER = 10 * USDC
MIN_VALIDATOR = 50 * USDC
ZERO_SALT = b"\0" * 32


@functools.cache
def _partial(name: str) -> Any:
    """Compile once per test process; deploy many times (hypothesis deploys per example)."""
    return boa.load_partial(str(CONTRACTS_DIR / f"{name}.vy"))


def deploy(name: str, *args: Any) -> Any:
    return _partial(name).deploy(*args)


def mine(blocks: int = 1) -> None:
    """Advance ``blocks`` blocks (12 s each) and give the last 256 blocks stable hashes (titanoboa
    keeps only the parent's): the hash of block n is keccak("block" || n)."""
    boa.env.time_travel(blocks=blocks)
    n = boa.env.evm.patch.block_number
    boa.env.evm.patch.prev_hashes = [
        keccak(b"block" + (n - 1 - i).to_bytes(32, "big")) if n - 1 - i >= 0 else b"\0" * 32
        for i in range(256)
    ]


@dataclass
class World:
    fee: int = FEE
    committee_size: int = 3
    periods: tuple[int, int, int, int] = PERIODS
    gate_enabled: bool = True
    accounts: dict[str, LocalAccount] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.deployer = boa.env.generate_address("deployer")
        with boa.env.prank(self.deployer):
            self.usdc = deploy("Stablecoin", "USD Coin", "USDC", "USD Coin", "2")
            self.identity = deploy("IdentityRegistry", "agentbazaar Agent", "AGENT")
            self.reputation = deploy("ReputationRegistry", self.identity.address)
            self.validation = deploy("ValidationRegistry", self.identity.address)
            self.stake = deploy("StakeRegistry", self.usdc.address, UNBOND, MIN_PROVIDER, MIN_VALIDATOR)  # fmt: skip
            self.gate = deploy("FeedbackGate", self.usdc.address, self.reputation.address)
            gate = self.gate.address if self.gate_enabled else "0x" + "00" * 20
            self.escrow = deploy(
                "JobEscrow", self.usdc.address, self.stake.address, gate,
                self.validation.address, self.fee, list(self.periods), self.committee_size,
            )  # fmt: skip
            self.stake.link(self.escrow.address)
            self.gate.setMinter(self.escrow.address, True)
        self.domain = model.token_domain(self.usdc.eip712Domain())
        mine(300)  # block numbers well above 256, every recent block with a hash

    # ---- accounts and money ------------------------------------------------------------------
    def account(self, name: str | None = None, usdc: int = 0) -> LocalAccount:
        acct: LocalAccount = Account.create()
        if name:
            self.accounts[name] = acct
        if usdc:
            self.mint(acct.address, usdc)
        return acct

    def mint(self, to: str, amount: int) -> None:
        with boa.env.prank(self.deployer):
            self.usdc.mint(to, amount)

    def balance(self, who: Any) -> int:
        return int(self.usdc.balanceOf(getattr(who, "address", who)))

    def sign_receive(self, payer: LocalAccount, to: str, value: int, nonce: bytes) -> bytes:
        message = model.receive_authorization(payer.address, to, value, self.now + DAY, nonce)
        signable = encode_typed_data(
            domain_data=self.domain, message_types=model.RECEIVE_TYPES, message_data=message
        )
        return bytes(payer.sign_message(signable).signature)

    @property
    def now(self) -> int:
        return int(boa.env.evm.patch.timestamp)

    # ---- jobs --------------------------------------------------------------------------------
    def create(
        self,
        client: LocalAccount,
        provider: LocalAccount | str,
        evaluator: LocalAccount | str,
        budget: int,
        *,
        duration: int = DAY,
        partial: bool = False,
        description: str = "a job",
    ) -> int:
        with boa.env.prank(client.address):
            return int(
                self.escrow.createJob(
                    _addr(provider), _addr(evaluator), self.now + duration, description, budget,
                    partial,
                )
            )  # fmt: skip

    def fund(self, job_id: int, client: LocalAccount, salt: bytes = ZERO_SALT) -> None:
        job = self.job(job_id)
        nonce = model.fund_nonce(self.escrow.address, job_id, salt)
        sig = self.sign_receive(client, self.escrow.address, job.budget + self.fee, nonce)
        self.escrow.fundWithAuthorization(job_id, 0, self.now + DAY, salt, sig)

    def submit(self, job_id: int, provider: LocalAccount, deliverable: bytes | None = None) -> None:
        with boa.env.prank(provider.address):
            self.escrow.submit(job_id, deliverable or keccak(b"work"))

    def complete(self, job_id: int, evaluator: LocalAccount, paid_bps: int = model.BPS) -> None:
        with boa.env.prank(evaluator.address):
            self.escrow.complete(job_id, b"\0" * 32, paid_bps)

    def reject(self, job_id: int, who: LocalAccount) -> None:
        with boa.env.prank(who.address):
            self.escrow.reject(job_id, b"\0" * 32)

    def job(self, job_id: int) -> model.JobInfo:
        raw = self.escrow.getJob(job_id)
        return model.job_from_tuple(job_id, raw, self.escrow.disputeWindowEnd(job_id), self.now)

    def new_job(self, budget: int = 10 * USDC, **kwargs: Any) -> tuple[int, LocalAccount, LocalAccount, LocalAccount]:  # fmt: skip
        """A created and funded job: (id, client, provider, evaluator)."""
        client = self.account(usdc=budget + self.fee)
        provider, evaluator = self.account(usdc=self.fee), self.account()
        job_id = self.create(client, provider, evaluator, budget, **kwargs)
        self.fund(job_id, client)
        return job_id, client, provider, evaluator

    # ---- stake and disputes ------------------------------------------------------------------
    def bond(self, acct: LocalAccount, amount: int, roles: int, salt: bytes | None = None) -> None:
        salt = salt or os.urandom(32)
        self.mint(acct.address, amount)
        nonce = model.bond_nonce(roles, salt)
        sig = self.sign_receive(acct, self.stake.address, amount, nonce)
        self.stake.bondWithAuthorization(acct.address, amount, roles, 0, self.now + DAY, salt, sig)

    def validators(self, n: int, amount: int = MIN_VALIDATOR) -> list[LocalAccount]:
        out = []
        for _ in range(n):
            v = self.account()
            self.bond(v, amount, model.ROLE_VALIDATOR)
            out.append(v)
        return out

    def dispute(self, job_id: int, provider: LocalAccount, salt: bytes = b"\1" * 32) -> None:
        nonce = model.dispute_nonce(self.escrow.address, job_id, salt)
        sig = self.sign_receive(provider, self.escrow.address, self.fee, nonce)
        self.escrow.dispute(job_id, 0, self.now + DAY, salt, sig)

    def draw(self, job_id: int) -> list[str]:
        """Mine past the seed block and draw; a seed block whose hash is gone (more than 256
        blocks ago) is replaced by a new one first."""
        for _ in range(2):
            mine(3)
            self.escrow.drawCommittee(job_id)
            committee = [str(a) for a in self.escrow.getDispute(job_id)[4]]
            if committee:
                return committee
        raise AssertionError("the committee was not drawn")

    def commit(self, job_id: int, voter: str, vote: int, salt: bytes | None = None) -> bytes:
        salt = salt or keccak(voter.encode() + job_id.to_bytes(32, "big"))
        with boa.env.prank(voter):
            self.escrow.commitVote(job_id, model.vote_commitment(job_id, voter, vote, salt))
        return salt

    def reveal(self, job_id: int, voter: str, vote: int, salt: bytes | None = None) -> None:
        salt = salt or keccak(voter.encode() + job_id.to_bytes(32, "big"))
        with boa.env.prank(voter):
            self.escrow.revealVote(job_id, vote, salt)

    def vote_all(self, job_id: int, votes: dict[str, int]) -> None:
        """Members commit, then reveal: 1 or 2 votes and reveals, -1 or -2 commits that vote
        but never reveals, 0 commits nothing. Waits out the periods as needed."""
        _seed, _opened, commit_end, reveal_end, *_ = self.escrow.getDispute(job_id)
        for voter, vote in votes.items():
            if vote:
                self.commit(job_id, voter, abs(vote))
        if sum(1 for v in votes.values() if v) < self.committee_size:
            self.until(commit_end)
        for voter, vote in votes.items():
            if vote > 0:
                self.reveal(job_id, voter, vote)
        if sum(1 for v in votes.values() if v > 0) < self.committee_size:
            self.until(reveal_end)

    def until(self, timestamp: int) -> None:
        """Advance the clock to ``timestamp`` (no-op if it has passed)."""
        if timestamp > self.now:
            boa.env.time_travel(seconds=timestamp - self.now)

    def stake_of(self, who: Any) -> tuple[int, int, int, int, int]:
        s = self.stake.stakeOf(getattr(who, "address", who))
        return int(s[0]), int(s[1]), int(s[2]), int(s[3]), int(s[4])


def _addr(who: LocalAccount | str) -> str:
    return who if isinstance(who, str) else who.address
