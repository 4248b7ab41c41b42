# pragma version ~=0.4.3
"""
@title BatchSettlement
@notice Escrow for the x402 `batch-settlement` scheme: stateless unidirectional payment channels.
        A payer deposits once (through a deposit collector), signs cumulative EIP-712 vouchers per
        request off-chain, and the receiver side claims many vouchers (of many channels) in one
        transaction, then sweeps claimed funds to the receiver with `settle`.
@dev Same external ABI, events, custom-error selectors and EIP-712 types as the x402 reference
     `x402BatchSettlement`, so SDK clients, servers and facilitators talk to it unchanged.
     The EIP-712 domain ("x402 Batch Settlement", "1") is snekmate's `eip712_domain_separator`;
     its name and version are immutables, which live in the runtime code, so a verbatim copy of
     the deployed code at the canonical address on a development chain is complete (there
     `self` differs from the deployment's, so the domain separator is derived from `chain.id`
     and `self` on each call, as the module does whenever the cached one does not apply).
     Signatures (vouchers, refunds, claim batches) are checked by `lib/signature_checker.vy`.
     Invariant per channel: totalClaimed <= balance. Token holdings of this contract equal
     sum(balance) - sum(totalSettled) over all channels/receivers.
"""

from ethereum.ercs import IERC20

from snekmate.utils import eip712_domain_separator
from snekmate.utils import message_hash_utils

initializes: eip712_domain_separator

# EIP-5267: the EIP-712 domain of vouchers, refunds and claim batches.
exports: eip712_domain_separator.eip712Domain

from lib import signature_checker


interface IDepositCollector:
    def collect(
        payer: address, token: address, amount: uint256, channelId: bytes32, collectorData: Bytes[MAX_COLLECTOR_DATA]
    ): nonpayable


struct ChannelConfig:
    payer: address
    payerAuthorizer: address
    receiver: address
    receiverAuthorizer: address
    token: address
    withdrawDelay: uint40
    salt: bytes32


struct ChannelState:
    balance: uint128
    totalClaimed: uint128


struct WithdrawalState:
    amount: uint128
    initiatedAt: uint40


struct ReceiverState:
    totalClaimed: uint128
    totalSettled: uint128


struct Voucher:
    channel: ChannelConfig
    maxClaimableAmount: uint128


struct VoucherClaim:
    voucher: Voucher
    signature: Bytes[MAX_SIGNATURE]
    totalClaimed: uint128


event ChannelCreated:
    channelId: indexed(bytes32)
    config: ChannelConfig


event ChannelClosed:
    channelId: indexed(bytes32)
    config: ChannelConfig


event Deposited:
    channelId: indexed(bytes32)
    sender: indexed(address)
    amount: uint128
    newBalance: uint128


event Claimed:
    channelId: indexed(bytes32)
    sender: indexed(address)
    claimAmount: uint128
    newTotalClaimed: uint128


event Settled:
    receiver: indexed(address)
    token: indexed(address)
    sender: indexed(address)
    amount: uint128


event Refunded:
    channelId: indexed(bytes32)
    sender: indexed(address)
    amount: uint128


event WithdrawInitiated:
    channelId: indexed(bytes32)
    amount: uint128
    finalizeAfter: uint40


event WithdrawFinalized:
    channelId: indexed(bytes32)
    sender: indexed(address)
    amount: uint128


MAX_SIGNATURE: constant(uint256) = signature_checker.SIGNATURE_MAX
MAX_COLLECTOR_DATA: constant(uint256) = 2048
MAX_CLAIMS: constant(uint256) = 256
MAX_MULTICALL: constant(uint256) = 8
MAX_MULTICALL_DATA: constant(uint256) = 16384
MAX_MULTICALL_RETURN: constant(uint256) = 1024

MIN_WITHDRAW_DELAY: public(constant(uint40)) = 900
MAX_WITHDRAW_DELAY: public(constant(uint40)) = 2592000

CHANNEL_CONFIG_TYPEHASH: public(constant(bytes32)) = keccak256(
    "ChannelConfig(address payer,address payerAuthorizer,address receiver,address receiverAuthorizer,address token,uint40 withdrawDelay,bytes32 salt)"
)
VOUCHER_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Voucher(bytes32 channelId,uint128 maxClaimableAmount)"
)
REFUND_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Refund(bytes32 channelId,uint256 nonce,uint128 amount)"
)
CLAIM_ENTRY_TYPEHASH: public(constant(bytes32)) = keccak256(
    "ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)"
)
CLAIM_BATCH_TYPEHASH: public(constant(bytes32)) = keccak256(
    "ClaimBatch(ClaimEntry[] claims)ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)"
)

# Each pair of amounts shares one storage slot (low 128 bits | high bits), as Solidity packs the
# reference's structs: a claim then updates a slot that is already non-zero (no 20k-gas SSTORE).
_channels: HashMap[bytes32, uint256]  # balance | totalClaimed << 128
_withdrawals: HashMap[bytes32, uint256]  # amount | initiatedAt << 128
_receivers: HashMap[address, HashMap[address, uint256]]  # totalClaimed | totalSettled << 128
refundNonce: public(HashMap[bytes32, uint256])

LOW128: constant(uint256) = 2**128 - 1


@deploy
def __init__():
    eip712_domain_separator.__init__("x402 Batch Settlement", "1")


# ---------------------------------------------------------------------------------------------
# errors (same selectors as the reference contract)
# ---------------------------------------------------------------------------------------------


@internal
@pure
def _fail(selector: Bytes[4]):
    raw_revert(selector)


# ---------------------------------------------------------------------------------------------
# deposits
# ---------------------------------------------------------------------------------------------


@external
@nonreentrant
def deposit(
    config: ChannelConfig, amount: uint128, collector: address, collectorData: Bytes[MAX_COLLECTOR_DATA]
):
    if (
        config.payer == empty(address)
        or config.receiver == empty(address)
        or config.receiverAuthorizer == empty(address)
        or config.token == empty(address)
    ):
        self._fail(method_id("InvalidChannel()"))
    if config.withdrawDelay < MIN_WITHDRAW_DELAY or config.withdrawDelay > MAX_WITHDRAW_DELAY:
        self._fail(method_id("WithdrawDelayOutOfRange()"))
    if amount == 0:
        self._fail(method_id("ZeroDeposit()"))
    if collector == empty(address):
        self._fail(method_id("InvalidCollector()"))

    channel_id: bytes32 = self._channel_id(config)
    ch: ChannelState = self._channel(channel_id)
    if amount > max_value(uint128) - ch.balance:
        self._fail(method_id("DepositOverflow()"))
    ch.balance += amount
    self._set_channel(channel_id, ch)

    before: uint256 = staticcall IERC20(config.token).balanceOf(self)
    extcall IDepositCollector(collector).collect(
        config.payer, config.token, convert(amount, uint256), channel_id, collectorData
    )
    after: uint256 = staticcall IERC20(config.token).balanceOf(self)
    if after != before + convert(amount, uint256):
        self._fail(method_id("DepositCollectionFailed()"))

    if ch.balance == amount and ch.totalClaimed == 0:
        log ChannelCreated(channelId=channel_id, config=config)
    log Deposited(channelId=channel_id, sender=msg.sender, amount=amount, newBalance=ch.balance)


# ---------------------------------------------------------------------------------------------
# claim & settle
# ---------------------------------------------------------------------------------------------


@external
@nonreentrant
def claim(voucherClaims: DynArray[VoucherClaim, MAX_CLAIMS]):
    if len(voucherClaims) == 0:
        self._fail(method_id("EmptyBatch()"))
    ds: bytes32 = self._domain_separator()
    for vc: VoucherClaim in voucherClaims:
        c: ChannelConfig = vc.voucher.channel
        if msg.sender != c.receiverAuthorizer and msg.sender != c.receiver:
            self._fail(method_id("NotAuthorizedToClaim()"))
        self._process_claim(vc, ds)


@external
@nonreentrant
def claimWithSignature(
    voucherClaims: DynArray[VoucherClaim, MAX_CLAIMS], authorizerSignature: Bytes[MAX_SIGNATURE]
):
    if len(voucherClaims) == 0:
        self._fail(method_id("EmptyBatch()"))
    authorizer: address = voucherClaims[0].voucher.channel.receiverAuthorizer
    ds: bytes32 = self._domain_separator()
    digest: bytes32 = self._claim_batch_digest(voucherClaims, ds)
    if not signature_checker._is_valid_signature(authorizer, digest, authorizerSignature):
        self._fail(method_id("InvalidSignature()"))
    for vc: VoucherClaim in voucherClaims:
        if vc.voucher.channel.receiverAuthorizer != authorizer:
            self._fail(method_id("NotReceiverAuthorizer()"))
        self._process_claim(vc, ds)


@external
@nonreentrant
def settle(receiver: address, token: address):
    rs: ReceiverState = self._receiver(receiver, token)
    amount: uint128 = rs.totalClaimed - rs.totalSettled
    if amount == 0:
        return
    rs.totalSettled = rs.totalClaimed
    self._set_receiver(receiver, token, rs)
    extcall IERC20(token).transfer(receiver, convert(amount, uint256), default_return_value=True)
    log Settled(receiver=receiver, token=token, sender=msg.sender, amount=amount)


# ---------------------------------------------------------------------------------------------
# timed withdrawal (payer's escape hatch)
# ---------------------------------------------------------------------------------------------


@external
@nonreentrant
def initiateWithdraw(config: ChannelConfig, amount: uint128):
    if msg.sender != config.payer and msg.sender != config.payerAuthorizer:
        self._fail(method_id("InvalidChannel()"))
    if amount == 0:
        self._fail(method_id("NothingToWithdraw()"))
    channel_id: bytes32 = self._channel_id(config)
    if self._withdrawal(channel_id).initiatedAt != 0:
        self._fail(method_id("WithdrawalAlreadyPending()"))
    ch: ChannelState = self._channel(channel_id)
    if amount > ch.balance - ch.totalClaimed:
        self._fail(method_id("WithdrawAmountExceedsAvailable()"))
    now: uint40 = convert(block.timestamp, uint40)
    self._set_withdrawal(channel_id, WithdrawalState(amount=amount, initiatedAt=now))
    log WithdrawInitiated(channelId=channel_id, amount=amount, finalizeAfter=now + config.withdrawDelay)


@external
@nonreentrant
def finalizeWithdraw(config: ChannelConfig):
    if msg.sender != config.payer and msg.sender != config.payerAuthorizer:
        self._fail(method_id("NotAuthorizedToFinalizeWithdraw()"))
    channel_id: bytes32 = self._channel_id(config)
    ws: WithdrawalState = self._withdrawal(channel_id)
    if ws.initiatedAt == 0:
        self._fail(method_id("WithdrawalNotPending()"))
    if block.timestamp < convert(ws.initiatedAt, uint256) + convert(config.withdrawDelay, uint256):
        self._fail(method_id("WithdrawDelayNotElapsed()"))

    ch: ChannelState = self._channel(channel_id)
    available: uint128 = ch.balance - ch.totalClaimed
    amount: uint128 = min(ws.amount, available)
    self._withdrawals[channel_id] = 0
    ch.balance -= amount
    self._set_channel(channel_id, ch)

    log WithdrawFinalized(channelId=channel_id, sender=msg.sender, amount=amount)
    if ch.balance == 0 and ch.totalClaimed == 0:
        log ChannelClosed(channelId=channel_id, config=config)
    if amount > 0:
        extcall IERC20(config.token).transfer(config.payer, convert(amount, uint256), default_return_value=True)


# ---------------------------------------------------------------------------------------------
# cooperative refund
# ---------------------------------------------------------------------------------------------


@external
@nonreentrant
def refund(config: ChannelConfig, amount: uint128):
    if msg.sender != config.receiverAuthorizer and msg.sender != config.receiver:
        self._fail(method_id("NotAuthorizedToRefund()"))
    self._execute_refund(config, self._channel_id(config), amount)


@external
@nonreentrant
def refundWithSignature(
    config: ChannelConfig, amount: uint128, nonce: uint256, receiverAuthorizerSignature: Bytes[MAX_SIGNATURE]
):
    channel_id: bytes32 = self._channel_id(config)
    if nonce != self.refundNonce[channel_id]:
        self._fail(method_id("InvalidRefundNonce()"))
    digest: bytes32 = self._typed_hash(
        keccak256(abi_encode(REFUND_TYPEHASH, channel_id, nonce, amount)), self._domain_separator()
    )
    if not signature_checker._is_valid_signature(config.receiverAuthorizer, digest, receiverAuthorizerSignature):
        self._fail(method_id("InvalidSignature()"))
    self._execute_refund(config, channel_id, amount)


# ---------------------------------------------------------------------------------------------
# multicall: batch several of the calls above into one transaction (delegatecall to self)
# ---------------------------------------------------------------------------------------------


@external
def multicall(
    data: DynArray[Bytes[MAX_MULTICALL_DATA], MAX_MULTICALL]
) -> DynArray[Bytes[MAX_MULTICALL_RETURN], MAX_MULTICALL]:
    results: DynArray[Bytes[MAX_MULTICALL_RETURN], MAX_MULTICALL] = []
    for call_data: Bytes[MAX_MULTICALL_DATA] in data:
        ok: bool = False
        out: Bytes[MAX_MULTICALL_RETURN] = b""
        ok, out = raw_call(
            self,
            call_data,
            max_outsize=MAX_MULTICALL_RETURN,
            is_delegate_call=True,
            revert_on_failure=False,
        )
        if not ok:
            raw_revert(out)
        results.append(out)
    return results


# ---------------------------------------------------------------------------------------------
# views
# ---------------------------------------------------------------------------------------------


@external
@view
def channels(channelId: bytes32) -> (uint128, uint128):
    """(balance, totalClaimed) of a channel."""
    ch: ChannelState = self._channel(channelId)
    return ch.balance, ch.totalClaimed


@external
@view
def pendingWithdrawals(channelId: bytes32) -> (uint128, uint40):
    """(amount, initiatedAt) of a channel's timed withdrawal; initiatedAt 0: none pending."""
    ws: WithdrawalState = self._withdrawal(channelId)
    return ws.amount, ws.initiatedAt


@external
@view
def receivers(receiver: address, token: address) -> (uint128, uint128):
    """(totalClaimed, totalSettled) of a receiver in a token."""
    rs: ReceiverState = self._receiver(receiver, token)
    return rs.totalClaimed, rs.totalSettled


@external
@view
def getChannelId(config: ChannelConfig) -> bytes32:
    return self._channel_id(config)


@external
@view
def getVoucherDigest(channelId: bytes32, maxClaimableAmount: uint128) -> bytes32:
    return self._typed_hash(
        keccak256(abi_encode(VOUCHER_TYPEHASH, channelId, maxClaimableAmount)), self._domain_separator()
    )


@external
@view
def getRefundDigest(channelId: bytes32, nonce: uint256, amount: uint128) -> bytes32:
    return self._typed_hash(
        keccak256(abi_encode(REFUND_TYPEHASH, channelId, nonce, amount)), self._domain_separator()
    )


@external
@view
def getClaimBatchDigest(voucherClaims: DynArray[VoucherClaim, MAX_CLAIMS]) -> bytes32:
    return self._claim_batch_digest(voucherClaims, self._domain_separator())


# ---------------------------------------------------------------------------------------------
# internals
# ---------------------------------------------------------------------------------------------


@internal
@view
def _channel(channel_id: bytes32) -> ChannelState:
    word: uint256 = self._channels[channel_id]
    return ChannelState(balance=convert(word & LOW128, uint128), totalClaimed=convert(word >> 128, uint128))


@internal
def _set_channel(channel_id: bytes32, ch: ChannelState):
    self._channels[channel_id] = convert(ch.balance, uint256) | (convert(ch.totalClaimed, uint256) << 128)


@internal
@view
def _withdrawal(channel_id: bytes32) -> WithdrawalState:
    word: uint256 = self._withdrawals[channel_id]
    return WithdrawalState(amount=convert(word & LOW128, uint128), initiatedAt=convert(word >> 128, uint40))


@internal
def _set_withdrawal(channel_id: bytes32, ws: WithdrawalState):
    self._withdrawals[channel_id] = convert(ws.amount, uint256) | (convert(ws.initiatedAt, uint256) << 128)


@internal
@view
def _receiver(receiver: address, token: address) -> ReceiverState:
    word: uint256 = self._receivers[receiver][token]
    return ReceiverState(totalClaimed=convert(word & LOW128, uint128), totalSettled=convert(word >> 128, uint128))


@internal
def _set_receiver(receiver: address, token: address, rs: ReceiverState):
    self._receivers[receiver][token] = convert(rs.totalClaimed, uint256) | (convert(rs.totalSettled, uint256) << 128)


@internal
@view
def _domain_separator() -> bytes32:
    return eip712_domain_separator._domain_separator_v4()


@internal
@pure
def _typed_hash(struct_hash: bytes32, ds: bytes32) -> bytes32:
    return message_hash_utils._to_typed_data_hash(ds, struct_hash)


@internal
@view
def _channel_id_with(config: ChannelConfig, ds: bytes32) -> bytes32:
    return self._typed_hash(keccak256(abi_encode(CHANNEL_CONFIG_TYPEHASH, config)), ds)


@internal
@view
def _channel_id(config: ChannelConfig) -> bytes32:
    return self._channel_id_with(config, self._domain_separator())


@internal
@view
def _claim_batch_digest(voucherClaims: DynArray[VoucherClaim, MAX_CLAIMS], ds: bytes32) -> bytes32:
    packed: DynArray[bytes32, MAX_CLAIMS] = []
    for vc: VoucherClaim in voucherClaims:
        cid: bytes32 = self._channel_id_with(vc.voucher.channel, ds)
        packed.append(
            keccak256(abi_encode(CLAIM_ENTRY_TYPEHASH, cid, vc.voucher.maxClaimableAmount, vc.totalClaimed))
        )
    root: bytes32 = keccak256(slice(abi_encode(packed), 64, 32 * len(packed)))
    return self._typed_hash(keccak256(abi_encode(CLAIM_BATCH_TYPEHASH, root)), ds)


@internal
def _process_claim(vc: VoucherClaim, ds: bytes32):
    channel_id: bytes32 = self._channel_id_with(vc.voucher.channel, ds)
    ch: ChannelState = self._channel(channel_id)
    if vc.totalClaimed <= ch.totalClaimed:
        return
    if vc.totalClaimed > vc.voucher.maxClaimableAmount:
        self._fail(method_id("ClaimExceedsCeiling()"))
    if vc.totalClaimed > ch.balance:
        self._fail(method_id("ClaimExceedsBalance()"))

    digest: bytes32 = self._typed_hash(
        keccak256(abi_encode(VOUCHER_TYPEHASH, channel_id, vc.voucher.maxClaimableAmount)), ds
    )
    payer_auth: address = vc.voucher.channel.payerAuthorizer
    if payer_auth != empty(address):
        if signature_checker._recover(digest, vc.signature) != payer_auth:
            self._fail(method_id("InvalidSignature()"))
    elif not signature_checker._is_valid_signature(vc.voucher.channel.payer, digest, vc.signature):
        self._fail(method_id("InvalidSignature()"))

    delta: uint128 = vc.totalClaimed - ch.totalClaimed
    ch.totalClaimed = vc.totalClaimed
    self._set_channel(channel_id, ch)
    receiver: address = vc.voucher.channel.receiver
    token: address = vc.voucher.channel.token
    rs: ReceiverState = self._receiver(receiver, token)
    rs.totalClaimed += delta
    self._set_receiver(receiver, token, rs)
    log Claimed(channelId=channel_id, sender=msg.sender, claimAmount=delta, newTotalClaimed=vc.totalClaimed)


@internal
def _execute_refund(config: ChannelConfig, channel_id: bytes32, amount: uint128):
    if amount == 0:
        self._fail(method_id("ZeroRefund()"))
    self.refundNonce[channel_id] = unsafe_add(self.refundNonce[channel_id], 1)

    ch: ChannelState = self._channel(channel_id)
    refund_amount: uint128 = min(amount, ch.balance - ch.totalClaimed)
    if refund_amount == 0:
        return
    ch.balance -= refund_amount
    self._set_channel(channel_id, ch)

    pws: WithdrawalState = self._withdrawal(channel_id)
    if pws.initiatedAt != 0:
        if refund_amount >= pws.amount:
            self._withdrawals[channel_id] = 0
        else:
            pws.amount -= refund_amount
            self._set_withdrawal(channel_id, pws)

    log Refunded(channelId=channel_id, sender=msg.sender, amount=refund_amount)
    if ch.balance == 0 and ch.totalClaimed == 0:
        log ChannelClosed(channelId=channel_id, config=config)
    extcall IERC20(config.token).transfer(config.payer, convert(refund_amount, uint256), default_return_value=True)
