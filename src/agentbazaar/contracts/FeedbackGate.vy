# pragma version ~=0.4.3
"""
@title FeedbackGate: paid-only ERC-8004 feedback, enforced on chain
@notice A ticket is minted when money reaches an agent and is consumed by exactly one piece of
        feedback, so the feedback this gate writes is paid-only by construction:
        feedback given through the gate <= tickets consumed <= payments made.

        Tickets are minted at settlement:
        - by a job escrow (a minter named by the owner) when a job completes: the client paid
          the provider `amount` (`mintTicket`);
        - by anyone relaying an x402 `exact` payment through `settleAndMint`: the gate submits the
          payer's EIP-3009 TransferWithAuthorization (the same signature an x402 facilitator
          settles) and mints the ticket in the same transaction; the signature is single use,
          so a payment settled elsewhere can never mint one.
        A ticket stores only `keccak256(abi_encode(payer, payee, amount))`; the fields are in
        the `TicketMinted` event.

        Feedback (`giveFeedback`): the payer names the ticket and its fields and the agent; the
        gate checks the commitment (the caller is the payer), that the ticket is unused, that
        the payee is the agent's verified agentWallet or its owner, and that the payer is not
        the agent's owner, operator or wallet; then marks the ticket used and calls the
        ReputationRegistry's own `giveFeedback`. In the registry the gate is the client
        address of all such feedback, so `getSummary(agentId, [gate], tag1, tag2)` is the
        paid-only summary, computed by the registry itself; the registry's ERC-8004
        interface is unchanged and direct feedback stays possible there. Who paid and how
        much is kept per (agentId, feedbackIndex) here (`feedbackTicket`) for weighted
        scores. The payer revokes its own feedback through `revokeFeedback`.

        Every revert carries a reason string starting with "gate: " (or the registry's).
"""

from ethereum.ercs import IERC20

from snekmate.auth import ownable

initializes: ownable

exports: (ownable.owner, ownable.transfer_ownership)

TAG_MAX: constant(uint256) = 64
ENDPOINT_MAX: constant(uint256) = 1024
URI_MAX: constant(uint256) = 8192
SIG_MAX: constant(uint256) = 256
CONSUMED: constant(bytes32) = 0x0000000000000000000000000000000000000000000000000000000000000001


interface IIdentityRegistry:
    def ownerOf(tokenId: uint256) -> address: view
    def isApprovedForAll(owner: address, operator: address) -> bool: view
    def getApproved(tokenId: uint256) -> address: view
    def getAgentWallet(agentId: uint256) -> address: view


interface IReputationRegistry:
    def giveFeedback(
        agentId: uint256,
        value_: int128,
        valueDecimals: uint8,
        tag1: String[TAG_MAX],
        tag2: String[TAG_MAX],
        endpoint: String[ENDPOINT_MAX],
        feedbackURI: String[URI_MAX],
        feedbackHash: bytes32,
    ): nonpayable
    def revokeFeedback(agentId: uint256, feedbackIndex: uint64): nonpayable
    def getLastIndex(agentId: uint256, clientAddress: address) -> uint64: view
    def getIdentityRegistry() -> address: view


struct Consumption:
    ticketId: uint256
    payer: address
    amount: uint256


event TicketMinted:
    ticketId: indexed(uint256)
    payer: indexed(address)
    payee: indexed(address)
    token: address
    amount: uint256
    minter: address


event TicketConsumed:
    ticketId: indexed(uint256)
    payer: indexed(address)
    agentId: indexed(uint256)
    feedbackIndex: uint64
    amount: uint256


event MinterSet:
    minter: indexed(address)
    allowed: bool


token: public(immutable(address))
reputationRegistry: public(immutable(address))
identityRegistry: public(immutable(address))

isMinter: public(HashMap[address, bool])
ticketCount: public(uint256)
_tickets: HashMap[uint256, bytes32]
_consumptions: HashMap[uint256, HashMap[uint64, Consumption]]


@deploy
def __init__(token_: address, reputation_registry: address):
    assert token_ != empty(address), "gate: zero token"
    assert reputation_registry != empty(address), "gate: zero reputation registry"
    ownable.__init__()
    token = token_
    reputationRegistry = reputation_registry
    identityRegistry = staticcall IReputationRegistry(reputation_registry).getIdentityRegistry()


@external
def setMinter(minter: address, allowed: bool):
    ownable._check_owner()
    assert minter != empty(address), "gate: zero minter"
    self.isMinter[minter] = allowed
    log MinterSet(minter=minter, allowed=allowed)


# ---- minting ---------------------------------------------------------------------------------
@external
def mintTicket(payer: address, payee: address, amount: uint256) -> uint256:
    """
    @notice A settlement contract (a job escrow) records that `payer` paid `payee` `amount`.
    """
    assert self.isMinter[msg.sender], "gate: only a settlement contract mints tickets"
    return self._mint(payer, payee, amount)


@external
@nonreentrant
def settleAndMint(
    payer: address,
    payee: address,
    amount: uint256,
    validAfter: uint256,
    validBefore: uint256,
    nonce: bytes32,
    signature: Bytes[SIG_MAX],
) -> uint256:
    """
    @notice Settles an x402 `exact` payment (the payer's EIP-3009 TransferWithAuthorization to
            `payee`) and mints its ticket in the same transaction.
    """
    assert payer != payee, "gate: the payer is the payee"
    before: uint256 = staticcall IERC20(token).balanceOf(payee)
    raw_call(
        token,
        abi_encode(
            payer,
            payee,
            amount,
            validAfter,
            validBefore,
            nonce,
            signature,
            method_id=method_id(
                "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)"
            ),
        ),
    )
    assert staticcall IERC20(token).balanceOf(payee) == before + amount, "gate: payment did not arrive"
    return self._mint(payer, payee, amount)


# ---- feedback --------------------------------------------------------------------------------
@external
@nonreentrant
def giveFeedback(
    ticketId: uint256,
    payee: address,
    amount: uint256,
    agentId: uint256,
    value_: int128,
    valueDecimals: uint8,
    tag1: String[TAG_MAX],
    tag2: String[TAG_MAX],
    endpoint: String[ENDPOINT_MAX],
    feedbackURI: String[URI_MAX],
    feedbackHash: bytes32,
) -> uint64:
    """
    @notice Feedback by the payer of ticket `ticketId` (fields as in its TicketMinted event),
            written to the ReputationRegistry; returns the registry's feedback index.
    """
    commitment: bytes32 = self._tickets[ticketId]
    assert commitment != empty(bytes32), "gate: no such ticket"
    assert commitment != CONSUMED, "gate: ticket already used"
    assert commitment == self._commit(msg.sender, payee, amount), "gate: not the payer of this ticket, or wrong payee or amount"
    registry: IIdentityRegistry = IIdentityRegistry(identityRegistry)
    owner: address = staticcall registry.ownerOf(agentId)
    wallet: address = staticcall registry.getAgentWallet(agentId)
    assert payee == wallet or payee == owner, "gate: the ticket paid another address than this agent's"
    assert (
        msg.sender != owner
        and msg.sender != wallet
        and not staticcall registry.isApprovedForAll(owner, msg.sender)
        and staticcall registry.getApproved(agentId) != msg.sender
    ), "gate: self-feedback not allowed"
    self._tickets[ticketId] = CONSUMED
    extcall IReputationRegistry(reputationRegistry).giveFeedback(
        agentId, value_, valueDecimals, tag1, tag2, endpoint, feedbackURI, feedbackHash
    )
    index: uint64 = staticcall IReputationRegistry(reputationRegistry).getLastIndex(agentId, self)
    self._consumptions[agentId][index] = Consumption(ticketId=ticketId, payer=msg.sender, amount=amount)
    log TicketConsumed(
        ticketId=ticketId, payer=msg.sender, agentId=agentId, feedbackIndex=index, amount=amount
    )
    return index


@external
def revokeFeedback(agentId: uint256, feedbackIndex: uint64):
    """
    @notice The payer who gave feedback `feedbackIndex` through the gate revokes it.
    """
    c: Consumption = self._consumptions[agentId][feedbackIndex]
    assert c.payer != empty(address), "gate: no feedback of the gate at this index"
    assert c.payer == msg.sender, "gate: only the payer who gave it revokes it"
    extcall IReputationRegistry(reputationRegistry).revokeFeedback(agentId, feedbackIndex)


# ---- views -----------------------------------------------------------------------------------
@external
@view
def feedbackTicket(agentId: uint256, feedbackIndex: uint64) -> Consumption:
    """
    @notice The ticket, payer and amount behind the gate's feedback `feedbackIndex` of
            `agentId` (zero values when there is none).
    """
    return self._consumptions[agentId][feedbackIndex]


@external
@view
def ticketState(ticketId: uint256) -> uint8:
    """
    @notice 0: no such ticket, 1: unused, 2: used.
    """
    c: bytes32 = self._tickets[ticketId]
    if c == empty(bytes32):
        return 0
    if c == CONSUMED:
        return 2
    return 1


@external
@view
def ticketMatches(ticketId: uint256, payer: address, payee: address, amount: uint256) -> bool:
    return self._tickets[ticketId] == self._commit(payer, payee, amount)


# ---- internals -------------------------------------------------------------------------------
@internal
def _mint(payer: address, payee: address, amount: uint256) -> uint256:
    assert payer != empty(address) and payee != empty(address), "gate: zero payer or payee"
    assert amount > 0, "gate: zero amount"
    ticket_id: uint256 = self.ticketCount + 1
    self.ticketCount = ticket_id
    self._tickets[ticket_id] = self._commit(payer, payee, amount)
    log TicketMinted(
        ticketId=ticket_id, payer=payer, payee=payee, token=token, amount=amount, minter=msg.sender
    )
    return ticket_id


@internal
@pure
def _commit(payer: address, payee: address, amount: uint256) -> bytes32:
    return keccak256(abi_encode(payer, payee, amount))
