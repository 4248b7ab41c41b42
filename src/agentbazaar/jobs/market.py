"""``JobMarket``: escrowed jobs and their disputes over web3, one call per step of a job's life.

    market = JobMarket(chain, escrow_address)           # or JobMarket.from_suite(suite)
    job_id, _ = market.create(client, provider=p, evaluator=e, budget=5_000_000, expires_in=3600)
    market.fund(client, job_id)                         # EIP-3009, signed inside Wallet.spend
    market.submit(provider_wallet, job_id, parse_deliverable("the report"))
    market.complete(evaluator_wallet, job_id)           # or reject / settle_from_validation
    market.job(job_id).state                            # "completed"

Money that leaves a wallet (the client's budget and bond, the provider's dispute fee) is an
EIP-3009 authorization signed through ``Wallet.spend`` (kind ``"job"``: a payment under every
policy rule; its idempotency key is the authorization's nonce, so a retried call never pays
twice). Every other call moves none of the caller's tokens and is signed by its account.
Each call is simulated before it is signed: a refusal raises the typed ``JobRefused`` subclass
for the contract's reason (``AlreadyDone``, ``TooLate``, ``NotAllowed``, ...), nothing sent.

Votes: a committee member commits to ``keccak(jobId, voter, vote, salt)`` and reveals later;
the salt is derived from the member's key (a deterministic signature over the job), so nothing
has to be stored between the two and nobody else can compute it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account.messages import encode_defunct
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3.logs import DISCARD

from agentbazaar.chain import Chain, to_address
from agentbazaar.jobs import model
from agentbazaar.jobs._onchain import Contracts, TxResult, checksum, contract_at
from agentbazaar.jobs.errors import JobError, JobInputError
from agentbazaar.wallet import Wallet

ZERO_SALT = b"\0" * 32
ZERO_REASON = b"\0" * 32
ESCROW_KEY = "JobEscrow"  # the suite's manifest key


@dataclass(frozen=True)
class MarketTerms:
    """The escrow's fixed terms (constructor arguments)."""

    token: str
    dispute_fee: int
    dispute_window: int
    draw_period: int
    commit_period: int
    reveal_period: int
    committee_size: int
    stake_registry: str
    feedback_gate: str | None
    validation_registry: str | None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["dispute_fee"] = str(self.dispute_fee)
        return out


class JobMarket:
    """Client of one JobEscrow (and the stake registry and feedback gate it is linked to)."""

    def __init__(self, chain: Chain, escrow_address: str) -> None:
        self.chain = chain
        self.escrow = contract_at(chain, "JobEscrow", escrow_address)
        self.terms = self._read_terms()
        self._c = Contracts(chain, self.terms.token)

    @classmethod
    def from_suite(cls, suite: Any) -> JobMarket:
        """The market of a deployed suite (``agentbazaar.suite.Suite``); JobError when the
        escrow is not deployed on its chain."""
        if not suite.has(ESCROW_KEY):
            raise JobError("the job escrow is not deployed on this chain: run `bazaar deploy`")
        return cls(suite.chain, suite.contract(ESCROW_KEY).address)

    def budget(self, tokens: Any, text: str) -> int:
        """Base units of a budget written by a person ("5 USDC", or "5" in the escrow's token);
        JobError for another token (``tokens``: the suite's token registry)."""
        token, units = tokens.parse_amount(text, default_token=tokens.get(self.terms.token).symbol)
        if token.address != self.terms.token:
            raise JobError(
                f"jobs are paid in {tokens.get(self.terms.token).symbol}, not {token.symbol}"
            )
        return int(units)

    @property
    def address(self) -> str:
        return str(self.escrow.address)

    @property
    def contracts(self) -> Contracts:
        return self._c

    def _read_terms(self) -> MarketTerms:
        f = self.escrow.functions
        gate, validation = (checksum(self.chain.call(x())) for x in (f.feedbackGate, f.validationRegistry))  # fmt: skip
        return MarketTerms(
            token=checksum(self.chain.call(f.token())),
            dispute_fee=int(self.chain.call(f.disputeFee())),
            dispute_window=int(self.chain.call(f.disputeWindow())),
            draw_period=int(self.chain.call(f.drawPeriod())),
            commit_period=int(self.chain.call(f.commitPeriod())),
            reveal_period=int(self.chain.call(f.revealPeriod())),
            committee_size=int(self.chain.call(f.committeeSize())),
            stake_registry=checksum(self.chain.call(f.stakeRegistry())),
            feedback_gate=None if int(gate, 16) == 0 else gate,
            validation_registry=None if int(validation, 16) == 0 else validation,
        )

    # ---- reads -------------------------------------------------------------------------------
    def job(self, job_id: int) -> model.JobInfo:
        f = self.escrow.functions
        raw = self._c.call(f.getJob(job_id), f"read job {job_id}", job_id=job_id)
        window_end = int(self.chain.call(f.disputeWindowEnd(job_id)))
        return model.job_from_tuple(job_id, raw, window_end, self.chain.timestamp())

    def dispute(self, job_id: int) -> model.DisputeInfo:
        return model.dispute_from_tuple(job_id, self.chain.call(self.escrow.functions.getDispute(job_id)))  # fmt: skip

    def jobs(self, *, involving: str | None = None, from_block: int = 0) -> list[model.JobInfo]:
        """Every job created since ``from_block`` (optionally only those ``involving`` an address
        as client, provider or evaluator), oldest first."""
        count = int(self.chain.call(self.escrow.functions.jobCount()))
        ids = range(1, count + 1)
        if from_block:
            logs = self.escrow.events.JobCreated().get_logs(from_block=from_block)
            ids = sorted({int(log["args"]["jobId"]) for log in logs})  # type: ignore[assignment]
        out = [self.job(i) for i in ids]
        if involving is not None:
            who = to_address(involving)
            out = [j for j in out if who in (j.client, j.provider, j.evaluator)]
        return out

    def description(self, job_id: int) -> str:
        logs = self.escrow.events.JobDescribed().get_logs(
            from_block=0, argument_filters={"jobId": job_id}
        )
        return str(logs[-1]["args"]["description"]) if logs else ""

    def verdict_request_hash(self, job_id: int) -> bytes:
        return bytes(self.chain.call(self.escrow.functions.verdictRequestHash(job_id)))

    def ticket_minted(self, result: TxResult) -> int | None:
        """The feedback ticket a completing transaction minted, if any."""
        if self.terms.feedback_gate is None:
            return None
        gate = contract_at(self.chain, "FeedbackGate", self.terms.feedback_gate)
        receipt = self.chain.w3.eth.get_transaction_receipt(HexBytes(result.tx_hash))
        events = gate.events.TicketMinted().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"]["ticketId"]) if events else None

    # ---- the client --------------------------------------------------------------------------
    def create(
        self,
        wallet: Wallet,
        *,
        provider: str | None,
        evaluator: str,
        budget: int,
        expires_in: int,
        description: str = "",
        partial: bool = False,
    ) -> tuple[int, TxResult]:
        """A new open job with ``wallet`` as client; returns its id."""
        if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
            raise JobInputError(f"a budget is a positive integer of base units, not {budget!r}")
        if len(description.encode()) > 2048:
            raise JobInputError("a job description is at most 2,048 bytes")
        expired_at = self.chain.timestamp() + expires_in
        fn = self.escrow.functions.createJob(
            to_address(provider) if provider else "0x" + "00" * 20,
            to_address(evaluator),
            expired_at,
            description,
            budget,
            partial,
        )
        receipt = self._c.send(wallet, fn, "create the job")
        events = self.escrow.events.JobCreated().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"]["jobId"]), TxResult.of(receipt)

    def fund(
        self, wallet: Wallet, job_id: int, *, approve: bool = False, valid_for: int = 3_600
    ) -> TxResult:
        """Escrow budget + the dispute bond from the client's wallet (one EIP-3009 signature)."""
        job = self.job(job_id)
        if job.client != wallet.address:
            raise JobInputError(f"job {job_id}'s client is {job.client}, not {wallet.name}")
        action = f"fund job {job_id}"
        self._c.precheck(wallet, self._fund_fn(job_id, 0, 0, b""), action, job_id=job_id)
        auth = self._c.authorize(
            wallet,
            kind="job",
            to=self.address,
            amount=job.budget + self.terms.dispute_fee,
            nonce=model.fund_nonce(self.address, job_id, ZERO_SALT),
            counterparty=job.provider,
            approve=approve,
            memo={"job": job_id, "escrow": self.address, "action": "fund"},
            valid_for=valid_for,
        )
        fn = self._fund_fn(job_id, auth.valid_after, auth.valid_before, auth.signature)
        receipt = self._c.send(wallet, fn, action, job_id=job_id)
        self._c.settle(wallet, auth, receipt)
        return TxResult.of(receipt)

    def _fund_fn(self, job_id: int, after: int, before: int, signature: bytes) -> Any:
        return self.escrow.functions.fundWithAuthorization(job_id, after, before, ZERO_SALT, signature)  # fmt: skip

    def set_budget(self, wallet: Wallet, job_id: int, budget: int) -> TxResult:
        fn = self.escrow.functions.setBudget(job_id, budget)
        return TxResult.of(self._c.send(wallet, fn, f"set the budget of job {job_id}", job_id=job_id))  # fmt: skip

    def set_provider(self, wallet: Wallet, job_id: int, provider: str) -> TxResult:
        fn = self.escrow.functions.setProvider(job_id, to_address(provider))
        return TxResult.of(self._c.send(wallet, fn, f"set the provider of job {job_id}", job_id=job_id))  # fmt: skip

    # ---- provider and evaluator --------------------------------------------------------------
    def submit(self, wallet: Wallet, job_id: int, deliverable: bytes) -> TxResult:
        if len(deliverable) != 32:
            raise JobInputError("a deliverable is 32 bytes (use parse_deliverable)")
        fn = self.escrow.functions.submit(job_id, deliverable)
        return TxResult.of(self._c.send(wallet, fn, f"submit job {job_id}", job_id=job_id))

    def complete(
        self, wallet: Wallet, job_id: int, *, paid_bps: int = model.BPS, reason: bytes = ZERO_REASON
    ) -> TxResult:
        fn = self.escrow.functions.complete(job_id, reason, model.parse_bps(paid_bps))
        return TxResult.of(self._c.send(wallet, fn, f"complete job {job_id}", job_id=job_id))

    def reject(self, wallet: Wallet, job_id: int, *, reason: bytes = ZERO_REASON) -> TxResult:
        fn = self.escrow.functions.reject(job_id, reason)
        return TxResult.of(self._c.send(wallet, fn, f"reject job {job_id}", job_id=job_id))

    def settle_from_validation(self, wallet: Wallet, job_id: int) -> TxResult:
        fn = self.escrow.functions.settleFromValidation(job_id)
        return TxResult.of(self._c.send(wallet, fn, f"settle job {job_id} from its validation", job_id=job_id))  # fmt: skip

    def claim_refund(self, wallet: Wallet, job_id: int) -> TxResult:
        fn = self.escrow.functions.claimRefund(job_id)
        return TxResult.of(self._c.send(wallet, fn, f"refund job {job_id}", job_id=job_id))

    # ---- disputes ----------------------------------------------------------------------------
    def dispute_job(self, wallet: Wallet, job_id: int, *, approve: bool = False) -> TxResult:
        """The provider disputes a rejected or unanswered job, paying the dispute fee."""
        job = self.job(job_id)
        if job.provider != wallet.address:
            raise JobInputError(f"only job {job_id}'s provider ({job.provider}) disputes it")
        fee, action = self.terms.dispute_fee, f"dispute job {job_id}"
        unsigned = self.escrow.functions.dispute(job_id, 0, 0, ZERO_SALT, b"")
        if fee == 0:
            return TxResult.of(self._c.send(wallet, unsigned, action, job_id=job_id))
        self._c.precheck(wallet, unsigned, action, job_id=job_id)
        auth = self._c.authorize(
            wallet,
            kind="job",
            to=self.address,
            amount=fee,
            nonce=model.dispute_nonce(self.address, job_id, ZERO_SALT),
            counterparty=job.client,
            approve=approve,
            memo={"job": job_id, "escrow": self.address, "action": "dispute"},
        )
        fn = self.escrow.functions.dispute(job_id, auth.valid_after, auth.valid_before, ZERO_SALT, auth.signature)  # fmt: skip
        receipt = self._c.send(wallet, fn, action, job_id=job_id)
        self._c.settle(wallet, auth, receipt)
        return TxResult.of(receipt)

    def draw_committee(self, wallet: Wallet, job_id: int) -> TxResult:
        fn = self.escrow.functions.drawCommittee(job_id)
        return TxResult.of(self._c.send(wallet, fn, f"draw the committee of job {job_id}", job_id=job_id))  # fmt: skip

    def commit_vote(self, wallet: Wallet, job_id: int, vote: int | str) -> TxResult:
        chosen = model.check_vote(vote)
        commitment = model.vote_commitment(job_id, wallet.address, chosen, self._salt(wallet, job_id))  # fmt: skip
        fn = self.escrow.functions.commitVote(job_id, commitment)
        return TxResult.of(self._c.send(wallet, fn, f"vote on job {job_id}", job_id=job_id))

    def reveal_vote(self, wallet: Wallet, job_id: int) -> tuple[int, TxResult]:
        """Reveal the vote this wallet committed to (found from its commitment)."""
        committed, _ = self.chain.call(self.escrow.functions.voteOf(job_id, wallet.address))
        salt = self._salt(wallet, job_id)
        for vote in (model.VOTE_PROVIDER, model.VOTE_CLIENT):
            if model.vote_commitment(job_id, wallet.address, vote, salt) == bytes(committed):
                fn = self.escrow.functions.revealVote(job_id, vote, salt)
                receipt = self._c.send(wallet, fn, f"reveal the vote on job {job_id}", job_id=job_id)  # fmt: skip
                return vote, TxResult.of(receipt)
        raise JobInputError(f"{wallet.name} has no vote of its own to reveal on job {job_id}")

    def resolve_dispute(self, wallet: Wallet, job_id: int) -> TxResult:
        fn = self.escrow.functions.resolveDispute(job_id)
        return TxResult.of(self._c.send(wallet, fn, f"resolve the dispute of job {job_id}", job_id=job_id))  # fmt: skip

    def _salt(self, wallet: Wallet, job_id: int) -> bytes:
        """The member's secret salt for this job: keccak of its (deterministic) signature over
        the escrow and job; never leaves the process before the reveal."""
        digest = keccak(
            abi_encode(
                ["string", "uint256", "address", "uint256"],
                ["agentbazaar.jobs.vote-salt", self.chain.chain_id, self.address, job_id],
            )
        )
        signed = wallet.account_for_deploy().sign_message(encode_defunct(digest))
        return keccak(bytes(signed.signature))
