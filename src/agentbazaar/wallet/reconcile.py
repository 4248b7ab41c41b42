"""Compare the ledger with the chain, to the last unit, and finish what a crash left behind.

For every ``signed`` or ``settled`` entry on this chain:

- a transaction with a receipt: reverted -> released (``failed``); amount, token or recipient
  different from the ledger -> reported as ``mismatch``; otherwise ``signed`` becomes ``settled``;
- a transaction the chain does not know: if its nonce has since been used by another transaction it
  can never be mined -> released (``dropped``); otherwise it is ``unsent`` and, on request
  (``rebroadcast=True``), the SAME signed bytes are broadcast again (never re-signed);
- a ``settled`` entry whose transaction the chain does not know -> ``missing`` (e.g. a reset node);
- a ``reserved`` entry whose process has ended -> ``abandoned`` (nothing was signed; released);
- an EIP-3009 authorization (no transaction of ours: an x402 payment, a ``PolicySigner``
  signature, a channel deposit): ``authorizationState`` on the token says whether it was used;
  used, the token's ``AuthorizationUsed`` event names the transaction (``settled``, with its hash;
  for an x402 payment the ``Transfer`` in it must pay the ledger's amount to the ledger's payee,
  else ``mismatch``) or its ``AuthorizationCanceled`` event shows it was cancelled (``canceled``,
  released); unused, it is ``expired`` after its ``validBefore`` (released) or still ``pending``;
- a channel voucher (no transaction of its own): ``settled`` once the channel's claimed total on
  the escrow reaches its ceiling; ``unfunded`` (released) when the channel holds less than its
  ceiling and no deposit of the buyer's is on its way (its deposit expired unrelayed, or the
  escrow was refunded); else ``pending``;
- a Permit2 authorization (x402 ``upto``, or ``exact`` through Permit2): Permit2's
  ``nonceBitmap`` says whether it was used (``settled``), is still ``pending``, or ``expired``
  unused after its deadline (released). A used one whose settlement the wallet never learnt
  stays counted at its authorized maximum (the amount paid is in the settlement's transaction).

``resolve_refused(wallet, chain, key)`` settles the fate of one spend a seller refused: the same
checks, and when the authorization is still live, its cancellation on chain when that is worth
its gas (``authorizations.worth_cancelling``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, cast

import rlp
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound
from web3.types import TxReceipt

from agentbazaar.chain import Chain, chain_errors, to_address
from agentbazaar.errors import BazaarError
from agentbazaar.wallet.authorizations import (
    AUTHORIZATION_CANCELED_TOPIC,
    AUTHORIZATION_USED_TOPIC,
    TOKEN_ABI,
    SignedAuthorization,
    authorization_of,
    topic_of,
    worth_cancelling,
)
from agentbazaar.wallet.ledger import Ledger, SpendRecord
from agentbazaar.wallet.policy import NATIVE_KEY
from agentbazaar.wallet.wallet import TRANSFER_TOPIC, Wallet

_ESCROW_ABI: list[dict[str, Any]] = [  # the batch-settlement escrow's channel state
    {
        "name": "channels",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "channelId", "type": "bytes32"}],
        "outputs": [
            {"name": "balance", "type": "uint128"},
            {"name": "totalClaimed", "type": "uint128"},
        ],
    }
]


@dataclass(frozen=True)
class Finding:
    """One ledger entry as seen on chain. ``outcome`` names what was found (see module doc)."""

    id: int
    wallet: str
    idempotency_key: str
    before: str
    after: str
    outcome: str
    detail: str
    tx_hash: str | None

    @property
    def is_difference(self) -> bool:
        return self.outcome not in ("ok",)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_NONCE_BITMAP_ABI: list[dict[str, Any]] = [
    {
        "name": "nonceBitmap",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "word", "type": "uint256"}],
        "outputs": [{"name": "", "type": "uint256"}],
    }
]
_PERMIT2_TYPES = ("PermitWitnessTransferFrom", "PermitTransferFrom")


def reconcile(
    ledger: Ledger, chain: Chain, *, wallet: str | None = None, rebroadcast: bool = False
) -> list[Finding]:
    """Check every signed/settled entry of ``wallet`` (or all) on ``chain``; fix what is certain.

    Reservations whose process ended before signing are released first (``abandoned``)."""
    findings = [
        Finding(
            id=rec.id,
            wallet=rec.wallet,
            idempotency_key=rec.idempotency_key,
            before="reserved",
            after=rec.status,
            outcome="abandoned",
            detail="its process ended before signing; released",
            tx_hash=None,
        )
        for rec in ledger.release_abandoned(wallet)
    ]
    records = ledger.records(wallet, statuses=("signed", "settled"))
    # vouchers last: whether one can still be paid depends on the fate of its channel's deposits
    for rec in sorted(records, key=lambda r: r.kind == "voucher"):
        if rec.chain_id is not None and rec.chain_id != chain.chain_id:
            continue
        outcome, detail = _check(ledger, chain, rec, rebroadcast)
        findings.append(_finding(ledger, rec, outcome, detail))
    return findings


def _finding(ledger: Ledger, rec: SpendRecord, outcome: str, detail: str) -> Finding:
    now = ledger.by_id(rec.id)
    return Finding(
        id=rec.id,
        wallet=rec.wallet,
        idempotency_key=rec.idempotency_key,
        before=rec.status,
        after=now.status,
        outcome=outcome,
        detail=detail,
        tx_hash=now.tx_hash or rec.tx_hash,
    )


def resolve_refused(wallet: Wallet, chain: Chain, idempotency_key: str) -> Finding | None:
    """Settle the fate of a spend a seller refused: settled if its authorization was used after
    all, released if it expired, else cancelled on chain when that is worth its gas (and the
    wallet can pay it); otherwise it stays ``pending`` until it expires. None without a row."""
    rec = wallet.ledger.get(wallet.name, idempotency_key)
    if rec is None or rec.status != "signed":
        return None
    outcome, detail = _check(wallet.ledger, chain, rec, rebroadcast=False)
    signed = authorization_of(rec.payload)
    now = chain.timestamp()
    if outcome != "pending" or signed is None:
        return _finding(wallet.ledger, rec, outcome, detail)
    if worth_cancelling(is_dev=chain.is_dev, valid_before=signed.valid_before, now=now):
        try:
            receipt = wallet.cancel_authorization(chain, rec)
        except BazaarError as exc:  # no gas, or it was used meanwhile: look again
            outcome, detail = _check(wallet.ledger, chain, rec, rebroadcast=False)
            if outcome == "pending":
                detail = f"could not cancel it ({exc}); {_live_until(signed, now)}"
            return _finding(wallet.ledger, rec, outcome, detail)
        tx = HexBytes(receipt["transactionHash"]).to_0x_hex()
        return _finding(wallet.ledger, rec, "canceled", f"canceled on chain in {tx}; released")
    return _finding(wallet.ledger, rec, "pending", _live_until(signed, now))


def _live_until(signed: SignedAuthorization, now: int) -> str:
    left = max(signed.valid_before - now, 0)
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(signed.valid_before))
    return (
        f"the authorization stays usable by whoever holds it until {when} ({left} s); "
        "`bazaar wallet ledger --reconcile` releases it after that"
    )


def _check(ledger: Ledger, chain: Chain, rec: SpendRecord, rebroadcast: bool) -> tuple[str, str]:
    if rec.tx_hash:
        receipt = chain.receipt(rec.tx_hash)
        if receipt is not None:
            return _check_receipt(ledger, chain, rec, receipt)
        return _check_missing(ledger, chain, rec, rebroadcast)
    payload = rec.payload or {}
    permit = payload.get("message")
    if payload.get("primary_type") in _PERMIT2_TYPES and isinstance(permit, dict):
        return _check_permit2(ledger, chain, rec, payload, permit)
    signed = authorization_of(rec.payload)
    if signed is not None and rec.token != NATIVE_KEY:
        return _check_authorization(ledger, chain, rec, signed)
    if rec.kind == "voucher":
        return _check_voucher(ledger, chain, rec)
    return "ok" if rec.status == "settled" else "pending", "no transaction to check"


def _check_receipt(
    ledger: Ledger, chain: Chain, rec: SpendRecord, receipt: TxReceipt
) -> tuple[str, str]:
    block = int(receipt["blockNumber"])
    if receipt["status"] != 1:
        ledger.mark_failed(rec.id, f"reverted on chain in block {block}", from_settled=True)
        return "reverted", f"reverted in block {block}; released from the budget"
    if rec.kind == "transfer":
        problem = _transfer_mismatch(chain, rec, receipt)
        if problem:
            return "mismatch", problem
    if rec.status == "signed":
        ledger.mark_settled(rec.id, block_number=block)
        return "settled", f"mined in block {block}; marked settled"
    if rec.block_number is not None and rec.block_number != block:
        return "mismatch", f"ledger says block {rec.block_number}, chain says {block}"
    return "ok", f"mined in block {block}"


def _transfer_mismatch(chain: Chain, rec: SpendRecord, receipt: TxReceipt) -> str | None:
    if rec.token == NATIVE_KEY:
        with chain_errors("read a transaction", url=chain.url):
            tx = chain.w3.eth.get_transaction(HexBytes(cast(str, rec.tx_hash)))
        to, value = tx.get("to"), int(tx.get("value", 0))
        if to is None or to.lower() != rec.counterparty.lower() or value != rec.amount:
            return f"chain paid {value} wei to {to}; ledger says {rec.amount} to {rec.counterparty}"
        return None
    paid = 0
    for log in receipt["logs"]:
        topics = log["topics"]
        if (
            log["address"].lower() == rec.token
            and len(topics) == 3
            and HexBytes(topics[0]) == HexBytes(TRANSFER_TOPIC)
            and _topic_address(topics[1]) == rec.payer.lower()
            and _topic_address(topics[2]) == rec.counterparty.lower()
        ):
            paid += int.from_bytes(HexBytes(log["data"]), "big")
    if paid != rec.amount:
        return f"chain moved {paid} base units to {rec.counterparty}; ledger says {rec.amount}"
    return None


def _topic_address(topic: Any) -> str:
    return "0x" + bytes(HexBytes(topic))[-20:].hex()


def _check_missing(
    ledger: Ledger, chain: Chain, rec: SpendRecord, rebroadcast: bool
) -> tuple[str, str]:
    tx_hash = cast(str, rec.tx_hash)
    try:
        with chain_errors("look up a transaction", url=chain.url):
            chain.w3.eth.get_transaction(HexBytes(tx_hash))
        return "pending", "in the node's pool, not mined yet"
    except BazaarError as exc:
        if not isinstance(exc.__cause__, TransactionNotFound):
            raise
    if rec.status == "settled":
        return "missing", "ledger says settled but the chain has no such transaction"
    if not rec.raw_tx:
        return "unsent", "signed but no raw transaction stored"
    raw = bytes(HexBytes(rec.raw_tx))
    with chain_errors("read the sender's nonce", url=chain.url):
        used = int(chain.w3.eth.get_transaction_count(to_address(rec.payer), "pending"))
    if _raw_nonce(raw) < used:
        ledger.mark_failed(rec.id, "dropped: its nonce was used by another transaction")
        return "dropped", "never mined and its nonce is used: it can never be; released"
    if not rebroadcast:
        return "unsent", "signed but not on chain: re-send the same bytes with --rebroadcast"
    chain.broadcast_raw(raw)
    receipt = chain.wait_for_receipt(tx_hash, action="rebroadcast")
    ledger.mark_settled(rec.id, block_number=int(receipt["blockNumber"]))
    return "rebroadcast", f"re-sent the signed transaction; mined in block {receipt['blockNumber']}"


def _raw_nonce(raw: bytes) -> int:
    if raw and raw[0] <= 0x7F:
        return int(TypedTransaction.from_bytes(HexBytes(raw)).as_dict()["nonce"])
    fields = rlp.decode(raw)
    return int.from_bytes(fields[0], "big")


def _check_authorization(
    ledger: Ledger, chain: Chain, rec: SpendRecord, signed: SignedAuthorization
) -> tuple[str, str]:
    token = chain.contract(to_address(rec.token), TOKEN_ABI)
    try:
        used = bool(chain.call(token.functions.authorizationState(rec.payer, signed.nonce)))
        use = _use_of(chain, rec, signed.nonce) if used else None
    except BazaarError as exc:
        return "unknown", f"cannot read the authorization on chain: {exc}"
    if used:
        return _check_used(ledger, chain, rec, use)
    if rec.status == "settled":
        return "missing", "ledger says settled but the authorization is unused on chain"
    if signed.valid_before and chain.timestamp() >= signed.valid_before:
        ledger.mark_failed(rec.id, "authorization expired unused")
        return "expired", "expired without being used: it can never be; released"
    return "pending", "authorization not used yet"


def _use_of(chain: Chain, rec: SpendRecord, nonce: bytes) -> tuple[str, str, int] | None:
    """(kind "used" | "canceled", tx hash, block) of the token's event for this nonce."""
    for kind, topic in (
        ("used", AUTHORIZATION_USED_TOPIC),
        ("canceled", AUTHORIZATION_CANCELED_TOPIC),
    ):
        with chain_errors("read the token's authorization events", url=chain.url):
            logs = chain.w3.eth.get_logs(
                {
                    "address": to_address(rec.token),
                    "topics": [
                        HexBytes(topic).to_0x_hex(),
                        topic_of(rec.payer),
                        "0x" + nonce.hex(),
                    ],
                    "fromBlock": 0,
                    "toBlock": "latest",
                }
            )
        if logs:
            log = logs[-1]
            return kind, HexBytes(log["transactionHash"]).to_0x_hex(), int(log["blockNumber"])
    return None


def _check_used(
    ledger: Ledger, chain: Chain, rec: SpendRecord, use: tuple[str, str, int] | None
) -> tuple[str, str]:
    if use is not None and use[0] == "canceled":
        if rec.status == "signed":
            ledger.mark_failed(rec.id, f"canceled on chain in {use[1]}")
            return "canceled", f"canceled on chain in {use[1]}; released"
        return "missing", f"ledger says settled but the authorization was canceled in {use[1]}"
    tx, block = (use[1], use[2]) if use is not None else (None, None)
    if tx is not None and rec.kind == "x402":
        receipt = chain.receipt(tx)
        problem = _transfer_mismatch(chain, rec, receipt) if receipt is not None else None
        if problem:
            return "mismatch", f"{problem} (in {tx})"
    if rec.status == "signed":
        ledger.mark_settled(rec.id, tx_hash=tx, block_number=block)
        where = f" in {tx}" if tx else ""
        return "settled", f"authorization used on chain{where}; marked settled"
    return "ok", "authorization used on chain"


def _check_voucher(ledger: Ledger, chain: Chain, rec: SpendRecord) -> tuple[str, str]:
    """A voucher is paid once the channel's claimed total reaches its ceiling."""
    escrow, channel = rec.memo.get("escrow"), rec.memo.get("channel")
    ceiling = int(str(rec.memo.get("maxClaimableAmount", "0")) or 0)
    if not escrow or not channel or not ceiling:
        return "ok" if rec.status == "settled" else "pending", "no channel to check"
    contract = chain.contract(to_address(str(escrow)), _ESCROW_ABI)
    try:
        _balance, claimed = chain.call(contract.functions.channels(bytes(HexBytes(str(channel)))))
    except BazaarError as exc:
        return "unknown", f"cannot read the channel on chain: {exc}"
    if int(claimed) >= ceiling:
        if rec.status == "signed":
            ledger.mark_settled(rec.id)
            return "settled", f"the channel's claimed total {claimed} covers it; marked settled"
        return "ok", f"claimed {claimed} of {ceiling}"
    if rec.status == "settled":
        return "ok", f"acknowledged by the seller; claimed on chain so far {claimed} of {ceiling}"
    if int(_balance) + int(claimed) < ceiling and not _deposit_pending(ledger, rec):
        ledger.mark_failed(rec.id, "its channel holds nothing to pay it from")
        return "unfunded", (
            f"the channel holds {int(_balance) + int(claimed)} of its {ceiling} and no deposit "
            "is on its way: it can never be claimed; released"
        )
    return "pending", f"not claimed yet ({claimed} of {ceiling} claimed on chain)"


def _deposit_pending(ledger: Ledger, rec: SpendRecord) -> bool:
    """Is a signed deposit into this voucher's channel still on its way to the chain?"""
    channel = str(rec.memo.get("channel", "")).lower()
    return any(
        r.kind == "deposit" and str(r.memo.get("channel", "")).lower() == channel
        for r in ledger.records(rec.wallet, statuses=("signed",))
    )


def _check_permit2(
    ledger: Ledger, chain: Chain, rec: SpendRecord, payload: dict[str, Any], auth: dict[str, Any]
) -> tuple[str, str]:
    domain = payload.get("domain") or {}
    try:
        permit2 = chain.contract(
            to_address(str(domain.get("verifyingContract"))), _NONCE_BITMAP_ABI
        )
        nonce = int(str(auth["nonce"]))
        word = int(chain.call(permit2.functions.nonceBitmap(rec.payer, nonce >> 8)))
    except (BazaarError, KeyError, ValueError) as exc:
        return "unknown", f"cannot read Permit2's nonceBitmap: {exc}"
    used = bool(word >> (nonce & 255) & 1)
    if used and rec.status == "signed":
        ledger.mark_settled(rec.id)
        return "settled", "Permit2 nonce used on chain; counted at its authorized maximum"
    if used:
        return "ok", "Permit2 nonce used on chain"
    if rec.status == "settled" and rec.amount == 0:
        return "ok", "settled for nothing (no usage): no transfer on chain"
    if rec.status == "settled":
        return "missing", "ledger says settled but the Permit2 nonce is unused on chain"
    deadline = int(str(auth.get("deadline", 0)) or 0)
    if deadline and chain.timestamp() > deadline:
        ledger.mark_failed(rec.id, "Permit2 authorization expired unused")
        return "expired", "expired without being used: it can never be; released"
    return "pending", "Permit2 authorization not used yet"
