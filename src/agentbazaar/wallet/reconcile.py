"""Compare the ledger with the chain, to the last unit, and finish what a crash left behind.

For every ``signed`` or ``settled`` entry on this chain:

- a transaction with a receipt: reverted -> released (``failed``); amount, token or recipient
  different from the ledger -> reported as ``mismatch``; otherwise ``signed`` becomes ``settled``;
- a transaction the chain does not know: if its nonce has since been used by another transaction it
  can never be mined -> released (``dropped``); otherwise it is ``unsent`` and, on request
  (``rebroadcast=True``), the SAME signed bytes are broadcast again (never re-signed);
- a ``settled`` entry whose transaction the chain does not know -> ``missing`` (e.g. a reset node);
- a ``reserved`` entry whose process has ended -> ``abandoned`` (nothing was signed; released);
- an EIP-3009 authorization (no transaction of ours): ``authorizationState`` on the token says
  whether it was used (``settled``), is still ``pending``, or ``expired`` unused (released);
- a Permit2 authorization (x402 ``upto``, or ``exact`` through Permit2): Permit2's
  ``nonceBitmap`` says the same. A used one whose settlement the wallet never learnt stays
  counted at its authorized maximum (the amount paid is in the settlement's transaction).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, cast

import rlp
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound
from web3.types import TxReceipt

from agentbazaar.chain import Chain, to_address
from agentbazaar.chain._errors import chain_errors
from agentbazaar.errors import BazaarError
from agentbazaar.wallet.ledger import Ledger, SpendRecord
from agentbazaar.wallet.policy import NATIVE_KEY
from agentbazaar.wallet.wallet import TRANSFER_TOPIC

_AUTH_STATE_ABI: list[dict[str, Any]] = [
    {
        "name": "authorizationState",
        "type": "function",
        "stateMutability": "view",
        "inputs": [
            {"name": "authorizer", "type": "address"},
            {"name": "nonce", "type": "bytes32"},
        ],
        "outputs": [{"name": "", "type": "bool"}],
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
    for rec in ledger.records(wallet, statuses=("signed", "settled")):
        if rec.chain_id is not None and rec.chain_id != chain.chain_id:
            continue
        outcome, detail = _check(ledger, chain, rec, rebroadcast)
        after = ledger.by_id(rec.id).status
        findings.append(
            Finding(
                id=rec.id,
                wallet=rec.wallet,
                idempotency_key=rec.idempotency_key,
                before=rec.status,
                after=after,
                outcome=outcome,
                detail=detail,
                tx_hash=rec.tx_hash,
            )
        )
    return findings


def _check(ledger: Ledger, chain: Chain, rec: SpendRecord, rebroadcast: bool) -> tuple[str, str]:
    if rec.tx_hash:
        receipt = chain.receipt(rec.tx_hash)
        if receipt is not None:
            return _check_receipt(ledger, chain, rec, receipt)
        return _check_missing(ledger, chain, rec, rebroadcast)
    payload = rec.payload or {}
    auth = payload.get("message") or payload.get("authorization")
    if payload.get("primary_type") in _PERMIT2_TYPES and isinstance(auth, dict):
        return _check_permit2(ledger, chain, rec, payload, auth)
    if isinstance(auth, dict) and auth.get("nonce") and rec.token != NATIVE_KEY:
        return _check_authorization(ledger, chain, rec, auth)
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
    ledger: Ledger, chain: Chain, rec: SpendRecord, auth: dict[str, Any]
) -> tuple[str, str]:
    token = chain.contract(to_address(rec.token), _AUTH_STATE_ABI)
    nonce = bytes(HexBytes(str(auth["nonce"])))
    try:
        used = bool(chain.call(token.functions.authorizationState(rec.payer, nonce)))
    except BazaarError as exc:
        return "unknown", f"cannot read authorizationState: {exc}"
    if used and rec.status == "signed":
        ledger.mark_settled(rec.id)
        return "settled", "authorization used on chain; marked settled"
    if used:
        return "ok", "authorization used on chain"
    if rec.status == "settled":
        return "missing", "ledger says settled but the authorization is unused on chain"
    valid_before = int(str(auth.get("validBefore", 0)) or 0)
    if valid_before and chain.timestamp() >= valid_before:
        ledger.mark_failed(rec.id, "authorization expired unused")
        return "expired", "expired without being used: it can never be; released"
    return "pending", "authorization not used yet"


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
