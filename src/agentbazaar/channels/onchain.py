"""The batch-settlement contracts on a chain: placement at the canonical addresses, reads, and
the receiver-side transactions (deposit relay, claim, settle, refund).

The x402 SDK hard-codes the escrow and collector addresses (CREATE2 deployments on public
chains). On a development chain `install` deploys our Vyper contracts and copies their runtime
code to those addresses, so SDK clients, servers and facilitators work unchanged. Immutables
(the escrow's EIP-712 name and version, the collector's escrow address) live in the runtime
code, so a verbatim copy is complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from eth_typing import ChecksumAddress
from web3.contract import Contract

from agentbazaar.chain import Chain, chain_errors, to_address
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.channels import _crypto as cx
from agentbazaar.channels._crypto import ChannelConfig
from agentbazaar.channels.engine import OnchainState
from agentbazaar.channels.errors import ChannelError, ChannelInputError, VoucherRejected
from agentbazaar.channels.store import ChannelRecord
from agentbazaar.channels.wire import (
    BATCH_SETTLEMENT_ADDRESS,
    ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
    ERR_DEPOSIT_TRANSACTION_FAILED,
    ERR_REFUND_NO_BALANCE,
    MULTICALL3_ADDRESS,
)
from agentbazaar.errors import ChainError

_WITHDRAW_INITIATED_TOPIC = "0x" + keccak(b"WithdrawInitiated(bytes32,uint128,uint40)").hex()
_ERC1271_SELECTOR = keccak(b"isValidSignature(bytes32,bytes)")[:4]
_ERC1271_MAGIC = bytes.fromhex("1626ba7e")
# events after which a seller's mirror of a channel is stale (all carry the channel id first)
_STATE_TOPICS = [
    _WITHDRAW_INITIATED_TOPIC,
    "0x" + keccak(b"WithdrawFinalized(bytes32,address,uint128)").hex(),
    "0x" + keccak(b"Refunded(bytes32,address,uint128)").hex(),
    "0x" + keccak(b"Deposited(bytes32,address,uint128,uint128)").hex(),
]


def install(chain: Chain, deployer: LocalAccount) -> dict[str, ChecksumAddress]:
    """Place the escrow and the ERC-3009 deposit collector at their canonical addresses (and a
    Multicall3 `tryAggregate` at Multicall3's address when that is empty, for the SDK's
    facilitator). Idempotent; on a public chain the canonical deployments are used as they are.
    """
    placed = {
        "BatchSettlement": BATCH_SETTLEMENT_ADDRESS,
        "ERC3009DepositCollector": ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
    }
    if not chain.is_dev:
        return placed
    for name, target, args in (
        ("BatchSettlement", BATCH_SETTLEMENT_ADDRESS, ()),
        ("ERC3009DepositCollector", ERC3009_DEPOSIT_COLLECTOR_ADDRESS, (BATCH_SETTLEMENT_ADDRESS,)),
    ):
        art = compile_contract(name)
        staging, _ = chain.deploy(deployer, art.abi, art.bytecode, *args, name=name)
        code = chain.code_at(staging.address)
        if chain.code_at(target) != code:
            chain.set_code(target, code)
    if install_multicall3(chain, deployer):
        placed["Multicall3"] = MULTICALL3_ADDRESS
    return placed


def install_multicall3(chain: Chain, deployer: LocalAccount) -> bool:
    """Place a Multicall3 ``tryAggregate`` at Multicall3's canonical address on a development
    chain where nothing is there (the SDK's facilitators and our ERC-6492 checks call it).
    Returns True when it placed one."""
    if not chain.is_dev or chain.code_at(MULTICALL3_ADDRESS):
        return False
    art = compile_contract("BatchSettlementMulticall")
    staging, _ = chain.deploy(deployer, art.abi, art.bytecode, name="BatchSettlementMulticall")
    chain.set_code(MULTICALL3_ADDRESS, chain.code_at(staging.address))
    return True


def escrow_contract(chain: Chain) -> Contract:
    """The escrow at its canonical address."""
    return chain.contract(BATCH_SETTLEMENT_ADDRESS, compile_contract("BatchSettlement").abi)


class ChannelContracts:
    """Typed access to the escrow at its canonical address, sending as ``account``."""

    def __init__(self, chain: Chain, account: LocalAccount) -> None:
        self.chain = chain
        self.account = account
        self.escrow: Contract = escrow_contract(chain)

    # ---- reads ----------------------------------------------------------------------------
    def state(self, channel_id: bytes) -> OnchainState:
        fns = self.escrow.functions
        balance, claimed = fns.channels(channel_id).call()
        _, initiated_at = fns.pendingWithdrawals(channel_id).call()
        nonce = fns.refundNonce(channel_id).call()
        return OnchainState(int(balance), int(claimed), int(initiated_at), int(nonce))

    def receiver_totals(self, receiver: str, token: str) -> tuple[int, int]:
        """(totalClaimed, totalSettled) of a receiver for a token."""
        claimed, settled = self.escrow.functions.receivers(receiver, token).call()
        return int(claimed), int(settled)

    def channel_events_since(self, from_block: int) -> tuple[set[bytes], set[bytes], int]:
        """Since ``from_block``: channels whose payer started a timed withdrawal, channels whose
        balance changed (withdrawal finalized, refund, deposit by anyone), and the next block."""
        head = self.chain.block_number()
        if from_block > head:
            return set(), set(), from_block
        logs = self.chain.w3.eth.get_logs(
            {
                "address": BATCH_SETTLEMENT_ADDRESS,
                "fromBlock": from_block,
                "toBlock": head,
                "topics": [_STATE_TOPICS],
            }
        )
        urgent, changed = set(), set()
        for log in logs:
            cid = bytes(log["topics"][1])
            changed.add(cid)
            if "0x" + bytes(log["topics"][0]).hex() == _WITHDRAW_INITIATED_TOPIC:
                urgent.add(cid)
        return urgent, changed, head + 1

    def erc1271_valid(self, account: str, digest: bytes, signature: bytes) -> bool:
        """ERC-1271 `isValidSignature` of contract ``account`` (False for accounts without code
        or a call that reverts)."""
        if not self.chain.code_at(account):
            return False
        data = _ERC1271_SELECTOR + abi_encode(["bytes32", "bytes"], [digest, signature])
        try:
            out = self.chain.w3.eth.call({"to": to_address(account), "data": data})
        except Exception:  # a reverting or malformed wallet: not a valid signature
            return False
        return bytes(out)[:4] == _ERC1271_MAGIC

    async def is_valid_signature(self, account: str, digest: bytes, signature: bytes) -> bool:
        return await asyncio.to_thread(self.erc1271_valid, account, digest, signature)

    async def read_state(self, channel_id: bytes) -> OnchainState:
        return await asyncio.to_thread(self.state, channel_id)

    # ---- transactions ---------------------------------------------------------------------
    def _deposit_call(self, config: ChannelConfig, deposit: Mapping[str, Any]) -> Any:
        amount = cx.parse_amount(deposit.get("amount"), "deposit.amount")
        auth = deposit.get("authorization")
        erc3009 = auth.get("erc3009Authorization") if isinstance(auth, Mapping) else None
        if not isinstance(erc3009, Mapping):
            raise ChannelInputError("deposit.authorization.erc3009Authorization is required")
        data = abi_encode(
            ["uint256", "uint256", "uint256", "bytes"],
            [
                cx.parse_amount(erc3009.get("validAfter"), "validAfter"),
                cx.parse_amount(erc3009.get("validBefore"), "validBefore"),
                int.from_bytes(cx.parse_bytes32(erc3009.get("salt"), "salt"), "big"),
                cx.parse_signature(erc3009.get("signature"), "erc3009Authorization.signature"),
            ],
        )
        return self.escrow.functions.deposit(
            config.as_tuple(), amount, ERC3009_DEPOSIT_COLLECTOR_ADDRESS, data
        )

    def simulate_deposit(self, config: ChannelConfig, deposit: Mapping[str, Any]) -> None:
        """eth_call the deposit (raises ChainError with the reason when it would revert)."""
        fn = self._deposit_call(config, deposit)
        self.chain.estimate_gas(
            {"from": self.account.address, "to": fn.address, "data": fn._encode_transaction_data()},
            action="simulate the deposit",
        )

    def deposit_sync(
        self, config: ChannelConfig, channel_id: bytes, deposit: Mapping[str, Any]
    ) -> OnchainState:
        """Relay an ERC-3009 deposit authorization into the channel (the payer pays no gas)."""
        fn = self._deposit_call(config, deposit)
        try:
            receipt = self.chain.transact(self.account, fn)
        except ChainError as exc:
            raise VoucherRejected(
                f"the deposit was not accepted on chain: {exc}",
                reason=ERR_DEPOSIT_TRANSACTION_FAILED,
            ) from exc
        state = self.state(channel_id)
        return OnchainState(
            state.balance,
            state.total_claimed,
            state.withdraw_requested_at,
            state.refund_nonce,
            transaction="0x" + bytes(receipt["transactionHash"]).hex(),
        )

    async def deposit(
        self, config: ChannelConfig, channel_id: bytes, deposit: Mapping[str, Any]
    ) -> OnchainState:
        return await asyncio.to_thread(self.deposit_sync, config, channel_id, deposit)

    def claim(self, records: Sequence[ChannelRecord]) -> str:
        """Claim each channel's charged total with its latest voucher, in one transaction."""
        rows = [
            ((r.config.as_tuple(), r.signed_max), r.signature, r.charged)
            for r in records
            if r.charged > r.total_claimed
        ]
        if not rows:
            raise ChannelError("nothing to claim")
        receipt = self.chain.transact(self.account, self.escrow.functions.claim(rows))
        return "0x" + bytes(receipt["transactionHash"]).hex()

    def settle(self, receiver: str, token: str) -> str:
        receipt = self.chain.transact(self.account, self.escrow.functions.settle(receiver, token))
        return "0x" + bytes(receipt["transactionHash"]).hex()

    def refund_channel(self, record: ChannelRecord, amount: int | None) -> tuple[OnchainState, int]:
        """Claim ``record``'s charges (if not yet claimed) and refund up to ``amount`` (None: all)
        of the unclaimed escrow, in one `multicall` transaction sent by the receiver side."""
        before = self.state(record.channel_id)
        available = before.balance - max(record.charged, before.total_claimed)
        refund = available if amount is None else min(amount, available)
        if refund <= 0:
            raise VoucherRejected(
                "nothing left to refund in this channel", reason=ERR_REFUND_NO_BALANCE
            )
        calls = []
        if record.charged > before.total_claimed:
            row = ((record.config.as_tuple(), record.signed_max), record.signature, record.charged)
            calls.append(self.escrow.encode_abi("claim", args=[[row]]))
        calls.append(self.escrow.encode_abi("refund", args=[record.config.as_tuple(), refund]))
        fn = self.escrow.functions.multicall([bytes.fromhex(c[2:]) for c in calls])
        receipt = self.chain.transact(self.account, fn)
        after = self.state(record.channel_id)
        tx = "0x" + bytes(receipt["transactionHash"]).hex()
        return (
            OnchainState(
                after.balance,
                after.total_claimed,
                after.withdraw_requested_at,
                after.refund_nonce,
                transaction=tx,
            ),
            before.balance - after.balance,
        )

    async def refund(self, record: ChannelRecord, amount: int | None) -> tuple[OnchainState, int]:
        return await asyncio.to_thread(self.refund_channel, record, amount)

    def refund_direct(self, config: ChannelConfig, amount: int) -> str:
        fn = self.escrow.functions.refund(config.as_tuple(), amount)
        receipt = self.chain.transact(self.account, fn)
        return "0x" + bytes(receipt["transactionHash"]).hex()


# ---- the payer's side: reads and receipts of its own timed withdrawal ------------------------
_ESCROW_ERROR_NAMES = (
    "InvalidChannel",
    "NothingToWithdraw",
    "WithdrawalAlreadyPending",
    "WithdrawAmountExceedsAvailable",
    "NotAuthorizedToFinalizeWithdraw",
    "WithdrawalNotPending",
    "WithdrawDelayNotElapsed",
)
ESCROW_ERRORS: dict[str, str] = {
    "0x" + keccak(f"{name}()".encode())[:4].hex(): name for name in _ESCROW_ERROR_NAMES
}


def escrow_error(reason: object) -> str | None:
    """The escrow's custom error (e.g. ``"WithdrawDelayNotElapsed"``) named by a revert reason
    (``TransactionReverted.fields["reason"]``: the 4-byte selector in hex), or None."""
    text = str(reason or "").lower()
    return ESCROW_ERRORS.get(text[:10]) if text.startswith("0x") else None


def escrow_state(chain: Chain, channel_id: bytes) -> OnchainState:
    """A channel's state on chain, read by anyone (balance, claimed, pending withdrawal)."""
    fns = escrow_contract(chain).functions
    balance, claimed = fns.channels(channel_id).call()
    _, initiated_at = fns.pendingWithdrawals(channel_id).call()
    nonce = fns.refundNonce(channel_id).call()
    return OnchainState(int(balance), int(claimed), int(initiated_at), int(nonce))


def pending_withdrawal(chain: Chain, channel_id: bytes) -> tuple[int, int]:
    """(amount, initiatedAt) of a channel's pending withdrawal; (0, 0) when none."""
    amount, initiated_at = escrow_contract(chain).functions.pendingWithdrawals(channel_id).call()
    return int(amount), int(initiated_at)


def escrow_events(
    chain: Chain, receipt: Mapping[str, Any], event: str, channel_id: bytes
) -> list[dict[str, Any]]:
    """The arguments of the escrow's ``event`` logs for ``channel_id`` in ``receipt``."""
    from web3.logs import DISCARD

    escrow = escrow_contract(chain)
    logs = escrow.events[event]().process_receipt(receipt, errors=DISCARD)  # type: ignore[arg-type]
    return [
        dict(log["args"])
        for log in logs
        if log["address"] == BATCH_SETTLEMENT_ADDRESS
        and bytes(log["args"]["channelId"]) == channel_id
    ]


def finalized_withdrawals(
    chain: Chain, channel_id: bytes, from_block: int = 0
) -> list[tuple[str, int]]:
    """(transaction, amount) of each `WithdrawFinalized` of ``channel_id`` since ``from_block``."""
    escrow = escrow_contract(chain)
    topic = "0x" + keccak(b"WithdrawFinalized(bytes32,address,uint128)").hex()
    with chain_errors(f"read the channel's withdrawals since block {from_block}", url=chain.url):
        logs = chain.w3.eth.get_logs(
            {
                "address": BATCH_SETTLEMENT_ADDRESS,
                "fromBlock": from_block,
                "toBlock": "latest",
                "topics": [topic, "0x" + channel_id.hex()],
            }
        )
    out = []
    for log in logs:
        event = escrow.events.WithdrawFinalized().process_log(log)
        out.append(("0x" + bytes(log["transactionHash"]).hex(), int(event["args"]["amount"])))
    return out


_TRANSFER_TOPIC = keccak(b"Transfer(address,address,uint256)")


def transferred(receipt: Mapping[str, Any], token: str, source: str, dest: str) -> int:
    """The sum of ``token``'s ERC-20 `Transfer` logs from ``source`` to ``dest`` in ``receipt``."""
    total = 0
    for log in receipt.get("logs", []):
        topics = [bytes(t) for t in log["topics"]]
        if (
            str(log["address"]).lower() == token.lower()
            and len(topics) == 3
            and topics[0] == _TRANSFER_TOPIC
            and topics[1][12:].hex() == source.lower().removeprefix("0x")
            and topics[2][12:].hex() == dest.lower().removeprefix("0x")
        ):
            total += int.from_bytes(bytes(log["data"]), "big")
    return total
