# pragma version ~=0.4.3
"""
@title JobEscrow: ERC-8183 (draft) job escrow with disputes by a staked, randomly drawn committee
@notice A job has a client, a provider, an evaluator, a budget in one stablecoin (`token`) and
        an expiry. States (ERC-8183): Open -> Funded -> Submitted -> Completed or Rejected, and
        Expired with a refund to the client that anyone may trigger (`claimRefund`).

        Funding (`fundWithAuthorization`): the client signs one EIP-3009
        ReceiveWithAuthorization to this contract for budget + `disputeFee` (the client's
        dispute bond, returned unless the client loses a dispute), with the nonce
        `fundNonce(jobId, salt)`, so the signature can fund only this job; anyone may relay it
        and no approval is needed. Other funding paths (Permit2) plug in beside `_collect`,
        which every path ends in.

        The evaluator alone completes or rejects a submitted job, before expiry. It may be a
        validator agent whose verdict is its ERC-8004 ValidationRegistry response: the provider
        asks it for validation with the request hash `verdictRequestHash(jobId)` (bound to this
        escrow, the job and its deliverable), the evaluator answers `validationResponse` with a
        non-empty tag (an unanswered request reads as response 0 and tag ""), and anyone calls
        `settleFromValidation`. A response of at least PASS_SCORE completes the job; below, it is
        rejected. A job created `partial` pays in proportion: `complete(jobId, reason, paidBps)`
        pays budget * paidBps / 10,000 and refunds the rest; from a validation, the response
        (0..100) is the percentage paid (0 rejects).

        Disputes. The provider may dispute a job the evaluator rejected after submission, or a
        submitted job left unanswered at expiry, within `disputeWindow` seconds of the rejection
        or the expiry; until that window closes, the escrow of such a job is held (so a
        rejection or an unanswered submission refunds the client only after the window; a
        funded job without submission refunds at once). Disputing costs `disputeFee` (the
        provider's EIP-3009 authorization, nonce `disputeNonce(jobId, salt)`).
        - Committee: at dispute time the escrow commits to a future block (`SEED_BLOCKS`
          ahead); after it is mined anyone calls `drawCommittee`, which draws `committeeSize`
          distinct listed validators of the StakeRegistry (never the client, provider or
          evaluator) from that block's hash. If the hash is no longer available (more than 256
          blocks ago, or 8,191 with the EIP-2935 history contract: snekmate `block_hash`), the
          draw commits to a new future block instead, so nobody can choose a seed by waiting.
        - Votes: members re-execute the work off-chain and vote PROVIDER (1, pay the provider) or
          CLIENT (2, refund the client), by commit-reveal: first `commitVote(keccak256(
          abi_encode(jobId, voter, vote, salt)))` during `commitPeriod`, then `revealVote` during
          `revealPeriod` (it opens early once every member committed). Commit-reveal because
          members who vote against the outcome lose stake: with open votes, a member could wait
          and copy the others instead of doing the work, and the last voters could be bribed
          knowing the tally. Each member votes once.
        - Outcome (`resolveDispute`, after the reveal period or once all revealed): the majority
          of revealed votes. PROVIDER: the provider is paid the budget and gets its fee back,
          the client's bond pays the committee. CLIENT: the client gets budget and bond back,
          the provider's fee pays the committee and the provider loses PROVIDER_SLASH_BPS of its
          stake. A tie, no votes, or no committee drawn within `drawPeriod`: void, the status quo
          stands (client refunded, both fees returned). Members whose revealed vote differs from
          the outcome, and members who did not reveal, lose VALIDATOR_SLASH_BPS of their stake.
          Everything slashed plus the losing side's fee is split equally among the members who
          voted with the outcome (all revealers when void); the remainder of the division, or
          all of it when there are none, goes to the winning side (the client when void).
        Stake of the provider and of the committee is locked (no unbonding) while the dispute
        is open.

        Reputation: a completed job mints a feedback ticket (client paid provider the amount
        paid) in the FeedbackGate, when one is linked.

        Conservation: the token balance of this contract equals the sum over jobs of what each
        holds: budget + fee while Funded, Submitted, or Rejected and held; budget + 2 * fee
        while Disputed; nothing otherwise. Every revert carries a reason string.
"""

from ethereum.ercs import IERC20

from snekmate.utils import block_hash

OPEN: constant(uint8) = 1
FUNDED: constant(uint8) = 2
SUBMITTED: constant(uint8) = 3
COMPLETED: constant(uint8) = 4
REJECTED: constant(uint8) = 5
EXPIRED: constant(uint8) = 6
DISPUTED: constant(uint8) = 7

VOTE_PROVIDER: constant(uint8) = 1
VOTE_CLIENT: constant(uint8) = 2
OUTCOME_VOID: constant(uint8) = 3

FLAG_PARTIAL: constant(uint256) = 1
FLAG_HELD: constant(uint256) = 2  # a rejected job whose escrow waits for the dispute window

BPS: constant(uint256) = 10_000
PASS_SCORE: constant(uint8) = 50
VALIDATOR_SLASH_BPS: constant(uint256) = 1_000
PROVIDER_SLASH_BPS: constant(uint256) = 2_000
SEED_BLOCKS: constant(uint256) = 2
MAX_COMMITTEE: constant(uint256) = 7
MAX_DRAWS: constant(uint256) = 64
MAX_DURATION: constant(uint256) = 365 * 86_400
MAX_PERIOD: constant(uint256) = 30 * 86_400
MAX_BUDGET: constant(uint256) = 2**128
DESC_MAX: constant(uint256) = 2048
TAG_MAX: constant(uint256) = 64
SIG_MAX: constant(uint256) = 256
FUND_TAG: constant(bytes32) = keccak256("agentbazaar.jobs.fund")
DISPUTE_TAG: constant(bytes32) = keccak256("agentbazaar.jobs.dispute")
VERDICT_TAG: constant(bytes32) = keccak256("agentbazaar.jobs.verdict")
LOW64: constant(uint256) = 2**64 - 1


interface IStakeRegistry:
    def validatorCount() -> uint256: view
    def validatorAt(index: uint256) -> address: view
    def lock(account: address): nonpayable
    def unlock(account: address): nonpayable
    def slash(account: address, bps: uint256, to: address) -> uint256: nonpayable


interface IValidationRegistry:
    def getValidationStatus(
        requestHash: bytes32,
    ) -> (address, uint256, uint8, bytes32, String[TAG_MAX], uint256): view


interface IFeedbackGate:
    def mintTicket(payer: address, payee: address, amount: uint256) -> uint256: nonpayable


# storage: `meta` packs expiredAt (64 bits) | decidedAt (64) << 64 | status (8) << 128 |
# flags (8) << 136, so creating a job writes five slots
struct JobSlot:
    client: address
    provider: address
    evaluator: address
    budget: uint256
    meta: uint256
    deliverable: bytes32


struct Job:
    client: address
    provider: address
    evaluator: address
    budget: uint256
    expiredAt: uint256
    decidedAt: uint256
    status: uint8
    partial: bool
    held: uint256
    deliverable: bytes32


struct Dispute:
    seedBlock: uint256
    openedAt: uint256
    commitEnd: uint256
    revealEnd: uint256
    committee: DynArray[address, MAX_COMMITTEE]
    commits: uint256
    forProvider: uint256
    forClient: uint256


# ERC-8183 events (the draft's names and fields)
event JobCreated:
    jobId: indexed(uint256)
    client: indexed(address)
    provider: indexed(address)
    evaluator: address
    expiredAt: uint256


event ProviderSet:
    jobId: indexed(uint256)
    provider: indexed(address)


event BudgetSet:
    jobId: indexed(uint256)
    amount: uint256


event JobFunded:
    jobId: indexed(uint256)
    client: indexed(address)
    amount: uint256


event JobSubmitted:
    jobId: indexed(uint256)
    provider: indexed(address)
    deliverable: bytes32


event JobCompleted:
    jobId: indexed(uint256)
    evaluator: indexed(address)
    reason: bytes32


event JobRejected:
    jobId: indexed(uint256)
    rejector: indexed(address)
    reason: bytes32


event JobExpired:
    jobId: indexed(uint256)


event PaymentReleased:
    jobId: indexed(uint256)
    provider: indexed(address)
    amount: uint256


event Refunded:
    jobId: indexed(uint256)
    client: indexed(address)
    amount: uint256


# ours
event JobDescribed:
    jobId: indexed(uint256)
    partial: bool
    description: String[DESC_MAX]


event DisputeOpened:
    jobId: indexed(uint256)
    provider: indexed(address)
    seedBlock: uint256


event DisputeReseeded:
    jobId: indexed(uint256)
    seedBlock: uint256


event CommitteeDrawn:
    jobId: indexed(uint256)
    committee: DynArray[address, MAX_COMMITTEE]
    commitEnd: uint256
    revealEnd: uint256


event VoteCommitted:
    jobId: indexed(uint256)
    voter: indexed(address)


event VoteRevealed:
    jobId: indexed(uint256)
    voter: indexed(address)
    vote: uint8


event DisputeResolved:
    jobId: indexed(uint256)
    outcome: uint8
    forProvider: uint256
    forClient: uint256
    pool: uint256
    rewardEach: uint256


event FeePaid:
    jobId: indexed(uint256)
    to: indexed(address)
    amount: uint256


token: public(immutable(address))
stakeRegistry: public(immutable(address))
feedbackGate: public(immutable(address))
validationRegistry: public(immutable(address))
disputeFee: public(immutable(uint256))
disputeWindow: public(immutable(uint256))
drawPeriod: public(immutable(uint256))
commitPeriod: public(immutable(uint256))
revealPeriod: public(immutable(uint256))
committeeSize: public(immutable(uint256))

jobCount: public(uint256)
_jobs: HashMap[uint256, JobSlot]
_disputes: HashMap[uint256, Dispute]
_commitments: HashMap[uint256, HashMap[address, bytes32]]
_votes: HashMap[uint256, HashMap[address, uint8]]


@deploy
def __init__(
    token_: address,
    stake_registry: address,
    feedback_gate: address,
    validation_registry: address,
    dispute_fee: uint256,
    periods: uint256[4],
    committee_size: uint256,
):
    """
    @param periods [disputeWindow, drawPeriod, commitPeriod, revealPeriod] in seconds.
    @param feedback_gate, validation_registry May be zero (no tickets / no validation verdicts).
    """
    assert token_ != empty(address), "job: zero token"
    assert stake_registry != empty(address), "job: zero stake registry"
    assert dispute_fee <= MAX_BUDGET, "job: dispute fee too large"
    for p: uint256 in periods:
        assert p > 0 and p <= MAX_PERIOD, "job: periods are 1 second to 30 days"
    assert committee_size % 2 == 1 and committee_size <= MAX_COMMITTEE, "job: committee size is odd, at most 7"
    token = token_
    stakeRegistry = stake_registry
    feedbackGate = feedback_gate
    validationRegistry = validation_registry
    disputeFee = dispute_fee
    disputeWindow = periods[0]
    drawPeriod = periods[1]
    commitPeriod = periods[2]
    revealPeriod = periods[3]
    committeeSize = committee_size


# ---- creating and funding --------------------------------------------------------------------
@external
def createJob(
    provider: address,
    evaluator: address,
    expiredAt: uint256,
    description: String[DESC_MAX],
    budget: uint256,
    partial: bool,
) -> uint256:
    """
    @notice A new Open job with the caller as client. `provider` may be zero (set it later with
            `setProvider`); `evaluator` may be the client.
    """
    assert evaluator != empty(address), "job: zero evaluator"
    assert provider != msg.sender, "job: the client cannot be its own provider"
    assert expiredAt > block.timestamp, "job: expiry must be in the future"
    assert expiredAt <= block.timestamp + MAX_DURATION, "job: expiry more than a year ahead"
    assert budget <= MAX_BUDGET, "job: budget too large"
    job_id: uint256 = self.jobCount + 1
    self.jobCount = job_id
    flags: uint256 = FLAG_PARTIAL if partial else 0
    self._jobs[job_id] = JobSlot(
        client=msg.sender,
        provider=provider,
        evaluator=evaluator,
        budget=budget,
        meta=self._pack(expiredAt, 0, OPEN, flags),
        deliverable=empty(bytes32),
    )
    log JobCreated(
        jobId=job_id, client=msg.sender, provider=provider, evaluator=evaluator, expiredAt=expiredAt
    )
    log JobDescribed(jobId=job_id, partial=partial, description=description)
    if budget > 0:
        log BudgetSet(jobId=job_id, amount=budget)
    return job_id


@external
def setProvider(jobId: uint256, provider: address):
    j: Job = self._job(jobId)
    assert msg.sender == j.client, "job: only the client sets the provider"
    assert j.status == OPEN, "job: the provider is set only while the job is open"
    assert j.provider == empty(address), "job: the provider is already set"
    assert provider != empty(address), "job: zero provider"
    assert provider != j.client, "job: the client cannot be its own provider"
    self._jobs[jobId].provider = provider
    log ProviderSet(jobId=jobId, provider=provider)


@external
def setBudget(jobId: uint256, amount: uint256):
    j: Job = self._job(jobId)
    assert msg.sender == j.client or msg.sender == j.provider, "job: only the client or the provider sets the budget"
    assert j.status == OPEN, "job: the budget is set only while the job is open"
    assert amount <= MAX_BUDGET, "job: budget too large"
    self._jobs[jobId].budget = amount
    log BudgetSet(jobId=jobId, amount=amount)


@external
@nonreentrant
def fundWithAuthorization(
    jobId: uint256,
    validAfter: uint256,
    validBefore: uint256,
    salt: bytes32,
    signature: Bytes[SIG_MAX],
):
    """
    @notice Funds job `jobId` with the client's EIP-3009 ReceiveWithAuthorization of
            budget + disputeFee to this contract, nonce `fundNonce(jobId, salt)`.
    """
    j: Job = self._job(jobId)
    assert j.status != FUNDED and j.status != SUBMITTED and j.status != DISPUTED, "job: already funded"
    assert j.status == OPEN, "job: closed"
    assert j.provider != empty(address), "job: no provider yet"
    assert j.budget > 0, "job: zero budget"
    assert block.timestamp < j.expiredAt, "job: expired"
    amount: uint256 = j.budget + disputeFee
    self._collect(j.client, amount, validAfter, validBefore, self._nonce(FUND_TAG, jobId, salt), signature)
    self._set_status(jobId, j, FUNDED)
    log JobFunded(jobId=jobId, client=j.client, amount=amount)


# ---- work and verdicts -----------------------------------------------------------------------
@external
def submit(jobId: uint256, deliverable: bytes32):
    j: Job = self._job(jobId)
    assert msg.sender == j.provider, "job: only the provider submits"
    assert j.status != SUBMITTED, "job: already submitted"
    assert j.status == FUNDED, "job: not funded"
    assert block.timestamp < j.expiredAt, "job: expired: submissions are closed"
    assert deliverable != empty(bytes32), "job: empty deliverable"
    self._jobs[jobId].deliverable = deliverable
    self._set_status(jobId, j, SUBMITTED)
    log JobSubmitted(jobId=jobId, provider=msg.sender, deliverable=deliverable)


@external
@nonreentrant
def complete(jobId: uint256, reason: bytes32, paidBps: uint256 = BPS):
    """
    @notice The evaluator accepts the submission: pays the provider (all, or `paidBps` of the
            budget for a partial job) and refunds the rest with the client's bond.
    """
    j: Job = self._job(jobId)
    assert msg.sender == j.evaluator, "job: only the evaluator completes or rejects this job"
    assert j.status == SUBMITTED, "job: nothing submitted to complete"
    assert block.timestamp < j.expiredAt, "job: expired: the evaluator's time is over"
    self._complete(jobId, j, paidBps, reason, msg.sender)


@external
@nonreentrant
def reject(jobId: uint256, reason: bytes32):
    """
    @notice Open: the client withdraws the job. Funded: the evaluator cancels it (refund now).
            Submitted: the evaluator rejects the work (refund after the dispute window).
    """
    j: Job = self._job(jobId)
    if j.status == OPEN:
        assert msg.sender == j.client, "job: only the client rejects an open job"
        self._set_status(jobId, j, REJECTED)
    else:
        assert msg.sender == j.evaluator, "job: only the evaluator completes or rejects this job"
        assert j.status == FUNDED or j.status == SUBMITTED, "job: cannot be rejected now"
        assert block.timestamp < j.expiredAt, "job: expired: the evaluator's time is over"
        if j.status == FUNDED:
            self._set_status(jobId, j, REJECTED)
            self._refund(jobId, j.client, j.budget + disputeFee)
        else:
            self._reject_submitted(jobId, j)
    log JobRejected(jobId=jobId, rejector=msg.sender, reason=reason)


@external
@nonreentrant
def settleFromValidation(jobId: uint256):
    """
    @notice Applies the evaluator's ValidationRegistry response to `verdictRequestHash(jobId)`;
            anyone may call it once the evaluator answered (before the job's expiry).
    """
    j: Job = self._job(jobId)
    assert j.status == SUBMITTED, "job: nothing submitted to settle"
    assert validationRegistry != empty(address), "job: no validation registry"
    validator: address = empty(address)
    agent_id: uint256 = 0
    response: uint8 = 0
    response_hash: bytes32 = empty(bytes32)
    tag: String[TAG_MAX] = ""
    last_update: uint256 = 0
    validator, agent_id, response, response_hash, tag, last_update = staticcall IValidationRegistry(
        validationRegistry
    ).getValidationStatus(self._verdict_hash(jobId, j.deliverable))
    assert validator == j.evaluator, "job: the validation was not asked of this job's evaluator"
    assert len(tag) > 0, "job: the evaluator has not answered yet"
    assert last_update < j.expiredAt, "job: the verdict came after expiry"
    if j.partial and response > 0:
        self._complete(jobId, j, convert(min(response, 100), uint256) * 100, response_hash, j.evaluator)
    elif not j.partial and response >= PASS_SCORE:
        self._complete(jobId, j, BPS, response_hash, j.evaluator)
    else:
        self._reject_submitted(jobId, j)
        log JobRejected(jobId=jobId, rejector=j.evaluator, reason=response_hash)


@external
@nonreentrant
def claimRefund(jobId: uint256):
    """
    @notice Refunds the client, callable by anyone: a funded job after expiry, a submitted job
            left unanswered once the dispute window after expiry closed, a rejected submission
            once its dispute window closed.
    """
    j: Job = self._job(jobId)
    if j.status == FUNDED or j.status == SUBMITTED:
        assert block.timestamp >= j.expiredAt, "job: not expired yet"
        if j.status == SUBMITTED:
            assert block.timestamp >= j.expiredAt + disputeWindow, "job: unanswered: the provider may dispute until the window after expiry closes"
        self._set_status(jobId, j, EXPIRED)
        log JobExpired(jobId=jobId)
    else:
        assert j.status == REJECTED and j.held > 0, "job: nothing to refund"
        assert block.timestamp >= j.decidedAt + disputeWindow, "job: the provider may dispute the rejection until its window closes"
        self._set_meta(jobId, j.expiredAt, j.decidedAt, REJECTED, self._flags(j) & ~FLAG_HELD)
    self._refund(jobId, j.client, j.budget + disputeFee)


# ---- disputes --------------------------------------------------------------------------------
@external
@nonreentrant
def dispute(
    jobId: uint256,
    validAfter: uint256,
    validBefore: uint256,
    salt: bytes32,
    signature: Bytes[SIG_MAX],
):
    """
    @notice The provider disputes a rejected or unanswered job, paying `disputeFee` with its
            EIP-3009 ReceiveWithAuthorization (nonce `disputeNonce(jobId, salt)`).
    """
    j: Job = self._job(jobId)
    window_end: uint256 = 0
    if j.status == REJECTED and j.held > 0:
        window_end = j.decidedAt + disputeWindow
    elif j.status == SUBMITTED:
        assert block.timestamp >= j.expiredAt, "job: not answered yet: the evaluator has until expiry"
        window_end = j.expiredAt + disputeWindow
    else:
        raise "job: only a rejected or unanswered submission can be disputed"
    assert block.timestamp < window_end, "job: dispute window closed"
    if disputeFee > 0:
        self._collect(j.provider, disputeFee, validAfter, validBefore, self._nonce(DISPUTE_TAG, jobId, salt), signature)
    else:
        assert msg.sender == j.provider, "job: only the provider disputes"
    self._set_meta(jobId, j.expiredAt, j.decidedAt, DISPUTED, self._flags(j) & ~FLAG_HELD)
    seed_block: uint256 = block.number + SEED_BLOCKS
    self._disputes[jobId] = Dispute(
        seedBlock=seed_block,
        openedAt=block.timestamp,
        commitEnd=0,
        revealEnd=0,
        committee=[],
        commits=0,
        forProvider=0,
        forClient=0,
    )
    extcall IStakeRegistry(stakeRegistry).lock(j.provider)
    log DisputeOpened(jobId=jobId, provider=j.provider, seedBlock=seed_block)


@external
@nonreentrant
def drawCommittee(jobId: uint256):
    """
    @notice Draws the committee from the hash of the dispute's seed block (anyone may call it
            once that block is mined); commits to a new future block if the hash is gone.
    """
    j: Job = self._job(jobId)
    assert j.status == DISPUTED, "job: not disputed"
    d: Dispute = self._disputes[jobId]
    assert len(d.committee) == 0, "dispute: committee already drawn"
    assert block.timestamp < d.openedAt + drawPeriod, "dispute: draw period over: resolve it"
    assert block.number > d.seedBlock, "dispute: seed block not mined yet"
    seed: bytes32 = block_hash._block_hash(d.seedBlock)
    if seed == empty(bytes32):
        self._disputes[jobId].seedBlock = block.number + SEED_BLOCKS
        log DisputeReseeded(jobId=jobId, seedBlock=block.number + SEED_BLOCKS)
        return
    committee: DynArray[address, MAX_COMMITTEE] = self._draw(seed, j)
    for member: address in committee:
        extcall IStakeRegistry(stakeRegistry).lock(member)
    commit_end: uint256 = block.timestamp + commitPeriod
    self._disputes[jobId].committee = committee
    self._disputes[jobId].commitEnd = commit_end
    self._disputes[jobId].revealEnd = commit_end + revealPeriod
    log CommitteeDrawn(
        jobId=jobId, committee=committee, commitEnd=commit_end, revealEnd=commit_end + revealPeriod
    )


@external
def commitVote(jobId: uint256, commitment: bytes32):
    """
    @notice A committee member commits to `commitment(jobId, voter, vote, salt)`.
    """
    self._check_member(jobId)
    assert block.timestamp < self._disputes[jobId].commitEnd, "dispute: commit period over"
    assert self._commitments[jobId][msg.sender] == empty(bytes32), "dispute: already voted"
    assert commitment != empty(bytes32), "dispute: empty commitment"
    self._commitments[jobId][msg.sender] = commitment
    self._disputes[jobId].commits += 1
    log VoteCommitted(jobId=jobId, voter=msg.sender)


@external
def revealVote(jobId: uint256, vote: uint8, salt: bytes32):
    """
    @notice Reveals the vote committed to: 1 pays the provider, 2 refunds the client.
    """
    size: uint256 = self._check_member(jobId)
    assert vote == VOTE_PROVIDER or vote == VOTE_CLIENT, "dispute: vote 1 (provider) or 2 (client)"
    committed: bytes32 = self._commitments[jobId][msg.sender]
    assert committed != empty(bytes32), "dispute: no commitment to reveal"
    assert self._votes[jobId][msg.sender] == 0, "dispute: already voted"
    commit_end: uint256 = self._disputes[jobId].commitEnd
    assert block.timestamp >= commit_end or self._disputes[jobId].commits == size, "dispute: reveals open when every member committed or the commit period ends"
    assert block.timestamp < self._disputes[jobId].revealEnd, "dispute: reveal period over"
    assert self._commitment(jobId, msg.sender, vote, salt) == committed, "dispute: the vote does not match its commitment"
    self._votes[jobId][msg.sender] = vote
    if vote == VOTE_PROVIDER:
        self._disputes[jobId].forProvider += 1
    else:
        self._disputes[jobId].forClient += 1
    log VoteRevealed(jobId=jobId, voter=msg.sender, vote=vote)


@external
@nonreentrant
def resolveDispute(jobId: uint256):
    """
    @notice Applies the outcome (anyone may call it): after the reveal period, once every member
            revealed, or when no committee was drawn within the draw period (void).
    """
    j: Job = self._job(jobId)
    assert j.status == DISPUTED, "job: not disputed"
    d: Dispute = self._disputes[jobId]
    outcome: uint8 = OUTCOME_VOID
    if len(d.committee) == 0:
        assert block.timestamp >= d.openedAt + drawPeriod, "dispute: committee not drawn yet"
    else:
        assert block.timestamp >= d.revealEnd or d.forProvider + d.forClient == len(d.committee), "dispute: voting is still open"
        if d.forProvider > d.forClient:
            outcome = VOTE_PROVIDER
        elif d.forClient > d.forProvider:
            outcome = VOTE_CLIENT
    self._settle_dispute(jobId, j, d, outcome)


# ---- views -----------------------------------------------------------------------------------
@external
@view
def getJob(jobId: uint256) -> Job:
    return self._job(jobId)


@external
@view
def getDispute(jobId: uint256) -> Dispute:
    return self._disputes[jobId]


@external
@view
def voteOf(jobId: uint256, voter: address) -> (bytes32, uint8):
    """
    @notice (the voter's commitment or zero, its revealed vote: 0 none, 1 provider, 2 client).
    """
    return self._commitments[jobId][voter], self._votes[jobId][voter]


@external
@view
def disputeWindowEnd(jobId: uint256) -> uint256:
    """
    @notice Until when the job can be disputed (0: it cannot be, now or later).
    """
    j: Job = self._job(jobId)
    if j.status == REJECTED and j.held > 0:
        return j.decidedAt + disputeWindow
    if j.status == SUBMITTED:
        return j.expiredAt + disputeWindow
    return 0


@external
@view
def verdictRequestHash(jobId: uint256) -> bytes32:
    return self._verdict_hash(jobId, self._jobs[jobId].deliverable)


@external
@view
def fundNonce(jobId: uint256, salt: bytes32) -> bytes32:
    return self._nonce(FUND_TAG, jobId, salt)


@external
@view
def disputeNonce(jobId: uint256, salt: bytes32) -> bytes32:
    return self._nonce(DISPUTE_TAG, jobId, salt)


@external
@pure
def commitment(jobId: uint256, voter: address, vote: uint8, salt: bytes32) -> bytes32:
    return self._commitment(jobId, voter, vote, salt)


# ---- internals: jobs -------------------------------------------------------------------------
@internal
@view
def _job(job_id: uint256) -> Job:
    s: JobSlot = self._jobs[job_id]
    assert s.client != empty(address), "job: no such job"
    meta: uint256 = s.meta
    status: uint8 = convert((meta >> 128) & 255, uint8)
    flags: uint256 = (meta >> 136) & 255
    held: uint256 = 0
    if status == FUNDED or status == SUBMITTED or (status == REJECTED and flags & FLAG_HELD != 0):
        held = s.budget + disputeFee
    elif status == DISPUTED:
        held = s.budget + 2 * disputeFee
    return Job(
        client=s.client,
        provider=s.provider,
        evaluator=s.evaluator,
        budget=s.budget,
        expiredAt=meta & LOW64,
        decidedAt=(meta >> 64) & LOW64,
        status=status,
        partial=flags & FLAG_PARTIAL != 0,
        held=held,
        deliverable=s.deliverable,
    )


@internal
@pure
def _pack(expired_at: uint256, decided_at: uint256, status: uint8, flags: uint256) -> uint256:
    return expired_at | (decided_at << 64) | (convert(status, uint256) << 128) | (flags << 136)


@internal
@pure
def _flags(j: Job) -> uint256:
    return FLAG_PARTIAL if j.partial else 0


@internal
def _set_meta(job_id: uint256, expired_at: uint256, decided_at: uint256, status: uint8, flags: uint256):
    self._jobs[job_id].meta = self._pack(expired_at, decided_at, status, flags)


@internal
def _set_status(job_id: uint256, j: Job, status: uint8):
    self._set_meta(job_id, j.expiredAt, j.decidedAt, status, self._flags(j))


@internal
def _reject_submitted(job_id: uint256, j: Job):
    """A rejected submission: the escrow stays for the dispute window."""
    self._set_meta(job_id, j.expiredAt, block.timestamp, REJECTED, self._flags(j) | FLAG_HELD)


@internal
def _complete(job_id: uint256, j: Job, paid_bps: uint256, reason: bytes32, evaluator: address):
    assert paid_bps > 0 and paid_bps <= BPS, "job: paidBps is 1 to 10000"
    assert j.partial or paid_bps == BPS, "job: this job pays all or nothing"
    paid: uint256 = j.budget * paid_bps // BPS
    self._set_status(job_id, j, COMPLETED)
    self._pay_provider(job_id, j, paid, 0)
    self._refund(job_id, j.client, j.budget - paid + disputeFee)
    log JobCompleted(jobId=job_id, evaluator=evaluator, reason=reason)


@internal
def _pay_provider(job_id: uint256, j: Job, paid: uint256, fee_back: uint256):
    if paid + fee_back > 0:
        extcall IERC20(token).transfer(j.provider, paid + fee_back, default_return_value=True)
    log PaymentReleased(jobId=job_id, provider=j.provider, amount=paid)
    if paid > 0 and feedbackGate != empty(address):
        extcall IFeedbackGate(feedbackGate).mintTicket(j.client, j.provider, paid)


@internal
def _refund(job_id: uint256, client: address, amount: uint256):
    if amount > 0:
        extcall IERC20(token).transfer(client, amount, default_return_value=True)
        log Refunded(jobId=job_id, client=client, amount=amount)


@internal
def _collect(
    payer: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    signature: Bytes[SIG_MAX],
):
    """Pulls `amount` from `payer` with its EIP-3009 ReceiveWithAuthorization to this contract."""
    before: uint256 = staticcall IERC20(token).balanceOf(self)
    # the tightly ABI-encoded `bytes signature` overload (accepts ERC-1271 contract signers)
    raw_call(
        token,
        abi_encode(
            payer,
            self,
            amount,
            valid_after,
            valid_before,
            nonce,
            signature,
            method_id=method_id(
                "receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)"
            ),
        ),
    )
    assert staticcall IERC20(token).balanceOf(self) == before + amount, "job: the payment did not arrive"


@internal
@view
def _nonce(tag: bytes32, job_id: uint256, salt: bytes32) -> bytes32:
    return keccak256(abi_encode(tag, self, job_id, salt))


@internal
@view
def _verdict_hash(job_id: uint256, deliverable: bytes32) -> bytes32:
    return keccak256(abi_encode(VERDICT_TAG, chain.id, self, job_id, deliverable))


@internal
@pure
def _commitment(job_id: uint256, voter: address, vote: uint8, salt: bytes32) -> bytes32:
    return keccak256(abi_encode(job_id, voter, vote, salt))


# ---- internals: disputes ---------------------------------------------------------------------
@internal
@view
def _check_member(job_id: uint256) -> uint256:
    """Reverts unless the job is disputed, its committee drawn and the caller on it; returns
    the committee's size (reads only the committee, not the whole dispute)."""
    assert convert((self._jobs[job_id].meta >> 128) & 255, uint8) == DISPUTED, "job: not disputed"
    committee: DynArray[address, MAX_COMMITTEE] = self._disputes[job_id].committee
    assert len(committee) > 0, "dispute: committee not drawn yet"
    assert msg.sender in committee, "dispute: not on this committee"
    return len(committee)


@internal
@view
def _draw(seed: bytes32, j: Job) -> DynArray[address, MAX_COMMITTEE]:
    """`committeeSize` distinct listed validators, none a party to the job, picked by hashing
    the seed with a counter (uniform over the listed validators)."""
    n: uint256 = staticcall IStakeRegistry(stakeRegistry).validatorCount()
    assert n >= committeeSize, "dispute: not enough listed validators"
    chosen: DynArray[address, MAX_COMMITTEE] = []
    for i: uint256 in range(MAX_DRAWS):
        if len(chosen) == committeeSize:
            break
        index: uint256 = convert(keccak256(abi_encode(seed, i)), uint256) % n
        member: address = staticcall IStakeRegistry(stakeRegistry).validatorAt(index)
        if member == j.client or member == j.provider or member == j.evaluator or member in chosen:
            continue
        chosen.append(member)
    assert len(chosen) == committeeSize, "dispute: not enough eligible validators"
    return chosen


@internal
def _settle_dispute(job_id: uint256, j: Job, d: Dispute, outcome: uint8):
    stake: IStakeRegistry = IStakeRegistry(stakeRegistry)
    pool: uint256 = 0
    winners: DynArray[address, MAX_COMMITTEE] = []
    for member: address in d.committee:
        vote: uint8 = self._votes[job_id][member]
        if vote != 0 and (vote == outcome or outcome == OUTCOME_VOID):
            winners.append(member)
        else:
            pool += extcall stake.slash(member, VALIDATOR_SLASH_BPS, self)
        extcall stake.unlock(member)
    if outcome == VOTE_CLIENT:
        pool += extcall stake.slash(j.provider, PROVIDER_SLASH_BPS, self)
    extcall stake.unlock(j.provider)
    winner: address = j.client
    if outcome == VOTE_PROVIDER:
        winner = j.provider
        self._set_status(job_id, j, COMPLETED)
        self._pay_provider(job_id, j, j.budget, disputeFee)
        log JobCompleted(jobId=job_id, evaluator=self, reason=empty(bytes32))
    else:
        final: uint8 = REJECTED
        if j.decidedAt == 0:
            final = EXPIRED
            log JobExpired(jobId=job_id)
        self._set_meta(job_id, j.expiredAt, j.decidedAt, final, self._flags(j))
        self._refund(job_id, j.client, j.budget + disputeFee)
        if outcome == OUTCOME_VOID and disputeFee > 0:
            extcall IERC20(token).transfer(j.provider, disputeFee, default_return_value=True)
    if outcome != OUTCOME_VOID:
        pool += disputeFee  # the losing side's fee (or bond)
    each: uint256 = 0
    if len(winners) > 0:
        each = pool // len(winners)
    for member: address in winners:
        self._pay_fee(job_id, member, each)
    self._pay_fee(job_id, winner, pool - each * len(winners))
    log DisputeResolved(
        jobId=job_id,
        outcome=outcome,
        forProvider=d.forProvider,
        forClient=d.forClient,
        pool=pool,
        rewardEach=each,
    )


@internal
def _pay_fee(job_id: uint256, to: address, amount: uint256):
    if amount > 0:
        extcall IERC20(token).transfer(to, amount, default_return_value=True)
        log FeePaid(jobId=job_id, to=to, amount=amount)
