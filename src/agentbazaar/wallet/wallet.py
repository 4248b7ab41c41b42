"""``Wallet``: an account that can only sign through ``Wallet.spend`` (policy, then ledger, then key).

Every spend of every layer passes here: transfers (``Wallet.send``), EIP-3009 authorizations and
x402 payments, channel deposits and vouchers, swaps. The account itself is not handed out except
for contract deployment (``account_for_deploy``), which moves no tokens.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.types import TxParams, TxReceipt

from agentbazaar.chain import Chain, to_address
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import (
    AmountError,
    BazaarError,
    InputError,
    LedgerError,
    PolicyViolation,
    TransactionReverted,
)
from agentbazaar.tokens import Token, TokenRegistry
from agentbazaar.units import format_units
from agentbazaar.wallet.keystore import KeyStore, passphrase_from_env_or_prompt
from agentbazaar.wallet.ledger import Ledger, SpendRecord
from agentbazaar.wallet.policy import (
    ESCROW_KINDS,
    NATIVE_KEY,
    RELEASE_KINDS,
    SPEND_KINDS,
    PolicyStore,
    SpendingPolicy,
    SpendRequest,
    default_policy,
    token_key,
)

T = TypeVar("T")
Approver = Callable[[SpendRequest], bool]
TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")  # transfer(address,uint256)
TRANSFER_TOPIC = Web3.keccak(text="Transfer(address,address,uint256)")
_CHANNEL_CONFIG = "(address,address,address,address,address,uint40,bytes32)"
# calls that move no token out of the sender, only escrow back to a channel's payer
RELEASE_CALLS: tuple[str, ...] = (
    f"initiateWithdraw({_CHANNEL_CONFIG},uint128)",
    f"finalizeWithdraw({_CHANNEL_CONFIG})",
)
_RELEASE_SELECTORS = frozenset(bytes(Web3.keccak(text=sig)[:4]) for sig in RELEASE_CALLS)


class Spend:
    """One spend in progress, yielded by ``Wallet.spend``.

    The policy was checked and the reservation written before you get this object. Sign at most
    one thing with it (``sign_typed_data``, ``sign_transaction``, ``sign_with``); what you sign is
    recorded in the ledger before it is returned to you. ``replayed`` is True when the idempotency
    key was already signed: use ``payload`` (the earlier signed payload) instead of signing again.
    """

    def __init__(self, wallet: Wallet, record: SpendRecord, request: SpendRequest, replayed: bool):
        self._wallet = wallet
        self.record = record
        self.request = request
        self.replayed = replayed
        self._own_tx = False

    # ---- facts -------------------------------------------------------------------------------
    @property
    def key(self) -> str:
        return self.record.idempotency_key

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def payload(self) -> dict[str, Any] | None:
        return self.record.payload

    @property
    def address(self) -> ChecksumAddress:
        return self._wallet.address

    # ---- signing (each records before returning) ---------------------------------------------
    def _require_unsigned(self) -> None:
        if self.replayed or self.record.status != "reserved":
            raise LedgerError(
                f"spend {self.key!r} is already {self.record.status}: reuse its payload, "
                "do not sign again",
                idempotency_key=self.key,
            )

    def sign_typed_data(
        self,
        domain: Mapping[str, Any],
        types: Mapping[str, Any],
        message: Mapping[str, Any],
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """EIP-712 sign ``message``; returns the 0x signature, stored with the message."""
        self._require_unsigned()
        message_types = {k: v for k, v in types.items() if k != "EIP712Domain"}
        try:
            signable = encode_typed_data(
                domain_data=dict(domain), message_types=message_types, message_data=dict(message)
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise InputError(f"cannot encode the EIP-712 message: {exc}") from exc
        signed = self._wallet._account.sign_message(signable)
        signature = HexBytes(signed.signature).to_0x_hex()
        payload = {
            "type": "eip712",
            "domain": _jsonable(domain),
            "types": _jsonable(types),
            "message": _jsonable(message),
            "signature": signature,
            **(_jsonable(extra) if extra else {}),
        }
        self.record = self._wallet.ledger.mark_signed(self.record.id, payload=payload)
        return signature

    def sign_transaction(self, tx: Mapping[str, Any]) -> tuple[HexBytes, bytes]:
        """Sign a complete transaction (nonce, gas, fees set); returns (hash, raw), recorded."""
        self._require_unsigned()
        signed = self._wallet._account.sign_transaction(dict(tx))
        self.record_transaction(HexBytes(signed.hash), bytes(signed.raw_transaction))
        return HexBytes(signed.hash), bytes(signed.raw_transaction)

    def record_transaction(self, tx_hash: HexBytes, raw: bytes) -> None:
        """Store a transaction signed for this spend (the ``on_signed`` hook of ``Chain.send``).

        Called again by the same ``Chain.send`` only when the node refused the first bytes for
        their nonce (then they can never be mined): the new transaction replaces them."""
        if not self._own_tx:
            self._require_unsigned()
        self._own_tx = True
        self.record = self._wallet.ledger.mark_signed(
            self.record.id,
            tx_hash=HexBytes(tx_hash).to_0x_hex(),
            raw_tx=HexBytes(raw).to_0x_hex(),
            payload={"type": "transaction", "tx_hash": HexBytes(tx_hash).to_0x_hex()},
        )

    def sign_with(
        self, sign: Callable[[LocalAccount], T], payload_of: Callable[[T], Mapping[str, Any]]
    ) -> T:
        """Any other signature (e.g. an SDK's own encoder): ``sign(account)``, then recorded."""
        self._require_unsigned()
        result = sign(self._wallet._account)
        self.record = self._wallet.ledger.mark_signed(
            self.record.id, payload=_jsonable(payload_of(result))
        )
        return result

    # ---- outcome -----------------------------------------------------------------------------
    def settle(
        self,
        *,
        tx_hash: str | None = None,
        block_number: int | None = None,
        amount: int | None = None,
    ) -> None:
        """Mark it settled; ``amount`` when less than authorized was paid (x402 ``upto``)."""
        self.record = self._wallet.ledger.mark_settled(
            self.record.id, tx_hash=tx_hash, block_number=block_number, amount=amount
        )

    def fail(self, reason: str) -> None:
        """Release the spend. Only when what was signed certainly cannot be used any more."""
        self.record = self._wallet.ledger.mark_failed(self.record.id, reason)


@dataclass(frozen=True)
class SendResult:
    idempotency_key: str
    tx_hash: str
    block_number: int | None
    status: str
    replayed: bool
    amount: int
    token: str
    to: ChecksumAddress
    record: SpendRecord

    def to_dict(self) -> dict[str, Any]:
        return {
            "idempotency_key": self.idempotency_key,
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "status": self.status,
            "replayed": self.replayed,
            "amount": str(self.amount),
            "token": self.token,
            "to": self.to,
        }


@dataclass(frozen=True)
class Balance:
    token: Token
    units: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.token.symbol,
            "address": self.token.address,
            "decimals": self.token.decimals,
            "units": str(self.units),
            "amount": self.token.format(self.units).split(" ")[0],
        }


class Wallet:
    """A named account with a spending policy and a ledger."""

    def __init__(
        self,
        name: str,
        account: LocalAccount,
        policy: SpendingPolicy | Callable[[], SpendingPolicy],
        ledger: Ledger,
        *,
        approver: Approver | None = None,
        names: Callable[[str], ChecksumAddress] | None = None,
    ) -> None:
        self.name = name
        self._account = account
        self._policy = policy
        self.ledger = ledger
        self.approver = approver
        self._names = names

    def __repr__(self) -> str:
        return f"Wallet({self.name!r}, {self.address})"

    @property
    def address(self) -> ChecksumAddress:
        return to_address(self._account.address)

    @property
    def policy(self) -> SpendingPolicy:
        """The current policy (re-read from its file each time when backed by a file)."""
        return self._policy if isinstance(self._policy, SpendingPolicy) else self._policy()

    def resolve(self, target: str) -> ChecksumAddress:
        """A 0x address, or the name of a wallet of the data directory this wallet was opened
        from, resolved through its sealed address book (``KeyStore.address_of``)."""
        if target.startswith("0x"):
            return to_address(target)
        if self._names is None:
            raise InputError(
                f"{target!r} is not an address, and wallet {self.name!r} was not opened from a "
                "data directory whose wallet names it could resolve: give a 0x address"
            )
        return self._names(target)

    def account_for_deploy(self) -> LocalAccount:
        """The account, for deploying contracts (moves no tokens; not a spend)."""
        return self._account

    # ---- the one place every spend passes ----------------------------------------------------
    @contextmanager
    def spend(
        self,
        *,
        kind: str,
        token: Token | str | None,
        amount: int,
        counterparty: str,
        idempotency_key: str | None = None,
        approve: bool | Approver = False,
        memo: Mapping[str, Any] | None = None,
        chain_id: int | None = None,
    ) -> Iterator[Spend]:
        """Check the policy, reserve in the ledger, then yield a ``Spend`` to sign with.

        Raises ``PolicyViolation`` / ``ApprovalRequired`` before anything is written. Leaving
        the block with an exception before signing releases the reservation (``failed``); after
        signing the entry stays ``signed`` (it may still be used: ``reconcile`` decides).
        """
        request = self._request(kind, token, amount, counterparty, idempotency_key, memo, chain_id)
        record, replayed = self._reserve(request, approve)
        spend = Spend(self, record, request, replayed)
        try:
            yield spend
        except BaseException as exc:
            if spend.record.status == "reserved":
                self.ledger.mark_failed(spend.record.id, _reason(exc))
            raise
        if spend.record.status == "reserved":
            self.ledger.mark_failed(spend.record.id, "nothing was signed")

    def check(
        self,
        *,
        kind: str,
        token: Token | str | None,
        amount: int,
        counterparty: str,
        approve: bool | Approver = False,
        chain_id: int | None = None,
    ) -> None:
        """The policy's verdict on a planned spend, without reserving or signing anything.

        Raises what ``spend`` would raise for this spend alone now (counterparty lists, unlisted
        token, per-payment maximum, approval, rolling budget); a plan calls it for each of its
        spends before the first is signed. ``spend`` checks again when signing.
        """
        request = self._request(kind, token, amount, counterparty, None, None, chain_id)
        policy = self.policy
        policy.check_static(request)
        if policy.needs_approval(request) and not self._approved(request, approve):
            raise policy.approval_error(request)
        if request.kind not in ESCROW_KINDS:
            spent = self.ledger.spent_in_window(self.name, request.token, policy.window_seconds)
            policy.check_budget(request, spent)

    def record_refund(
        self,
        *,
        token: Token | str | None,
        amount: int,
        counterparty: str,
        idempotency_key: str,
        tx_hash: str | None = None,
        memo: Mapping[str, Any] | None = None,
        chain_id: int | None = None,
    ) -> SpendRecord:
        """Record escrow that came back (a channel refund or finished withdrawal), exactly once.

        Nothing is signed and no policy rule applies (money returns to this wallet); the entry
        (kind ``"refund"``, ``settled``) lowers ``escrowed``. Raises ``LedgerError`` when the
        amount is more than is escrowed for the token, or the key names a different entry.
        """
        if not isinstance(idempotency_key, str) or not idempotency_key:
            raise InputError("a refund needs its idempotency key (e.g. the refund transaction)")
        request = self._request(
            "refund",
            token,
            amount,
            counterparty,
            idempotency_key,
            memo,
            chain_id,
            kinds=RELEASE_KINDS,
        )
        return self.ledger.record_release(request, tx_hash=tx_hash)

    def escrowed(self) -> dict[str, int]:
        """Per token key: what this wallet holds in channel escrow (see the package invariant)."""
        return self.ledger.escrowed(self.name)

    def send_release(
        self, chain: Chain, fn: ContractFunction, *, timeout: float | None = None
    ) -> TxReceipt:
        """Send a call that moves no token out of this wallet (gas only; it can only return
        escrow to a channel's payer): a payer's own ``initiateWithdraw`` / ``finalizeWithdraw``.
        Returns its receipt.

        Not a spend: no token leaves the wallet, so no spending rule applies and no ledger row
        is written here; what comes back is recorded by the caller with ``record_refund``. Only
        the functions in ``RELEASE_CALLS`` are signed this way (anything else raises
        ``PolicyViolation`` before signing: a payment goes through ``spend``). The call is
        simulated before signing (``Chain.send`` estimates its gas): one that would revert raises
        ``TransactionReverted`` and nothing is signed or sent.
        """
        data = HexBytes(fn._encode_transaction_data())
        if bytes(data[:4]) not in _RELEASE_SELECTORS:
            raise PolicyViolation(
                f"{fn.fn_name} is not a release of escrow: the wallet signs it only as a spend",
                rule="release_call",
            )
        return chain.transact(self._account, fn, timeout=timeout)

    def _request(
        self,
        kind: str,
        token: Token | str | None,
        amount: int,
        counterparty: str,
        idempotency_key: str | None,
        memo: Mapping[str, Any] | None,
        chain_id: int | None,
        *,
        kinds: tuple[str, ...] = SPEND_KINDS,
    ) -> SpendRequest:
        if kind not in kinds:
            raise InputError(f"unknown spend kind {kind!r}; one of {', '.join(SPEND_KINDS)}")
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise AmountError(f"amounts are integer base units, not {type(amount).__name__}")
        if amount <= 0:
            raise AmountError(f"a spend must be positive, got {amount}")
        if idempotency_key is not None and not (
            isinstance(idempotency_key, str) and 0 < len(idempotency_key) <= 200
        ):
            raise InputError("an idempotency key is a non-empty string of at most 200 characters")
        symbol: str | None = None
        decimals: int | None = None
        if isinstance(token, Token):
            key = token_key(token.address)
            symbol, decimals = token.symbol, token.decimals
        else:
            key = token_key(to_address(token) if token and token != NATIVE_KEY else None)
            if key == NATIVE_KEY:
                symbol, decimals = "ETH", 18
        return SpendRequest(
            wallet=self.name,
            payer=self.address,
            kind=kind,
            token=key,
            amount=amount,
            counterparty=to_address(counterparty),
            idempotency_key=idempotency_key or f"{kind}-{secrets.token_hex(16)}",
            symbol=symbol,
            decimals=decimals,
            chain_id=chain_id,
            memo=dict(memo or {}),
        )

    def _reserve(self, request: SpendRequest, approve: bool | Approver) -> tuple[SpendRecord, bool]:
        existing = self.ledger.get(self.name, request.idempotency_key)
        if existing is not None and existing.status in ("signed", "settled"):
            return self.ledger.reserve(request, self.policy)  # the replay (checks it is the same)
        policy = self.policy
        policy.check_static(request)
        if policy.needs_approval(request) and not self._approved(request, approve):
            raise policy.approval_error(request)
        return self.ledger.reserve(request, policy)

    def _approved(self, request: SpendRequest, approve: bool | Approver) -> bool:
        if callable(approve):
            return bool(approve(request))
        if approve:
            return True
        return bool(self.approver(request)) if self.approver is not None else False

    def settle(
        self,
        idempotency_key: str,
        *,
        tx_hash: str | None = None,
        block_number: int | None = None,
        amount: int | None = None,
    ) -> SpendRecord:
        """Mark a signed spend settled once its settlement is known (e.g. an x402 response);
        ``amount`` is what was paid when it is less than authorized (an ``upto`` payment
        settled for the usage: the budget then counts only that)."""
        record = self.ledger.get(self.name, idempotency_key)
        if record is None:
            raise LedgerError(f"no spend {idempotency_key!r} in the ledger of {self.name!r}")
        return self.ledger.mark_settled(
            record.id, tx_hash=tx_hash, block_number=block_number, amount=amount
        )

    # ---- transfers ---------------------------------------------------------------------------
    def send(
        self,
        chain: Chain,
        to: str,
        amount: int,
        token: Token | None = None,
        *,
        idempotency_key: str | None = None,
        approve: bool | Approver = False,
        timeout: float | None = None,
    ) -> SendResult:
        """Pay ``amount`` base units of ``token`` (native when None) to ``to``, exactly once.

        The signed raw transaction is recorded before it is broadcast. A retry with the same
        key returns the earlier result, re-broadcasting the same signed transaction if it had
        not been mined. Raises before signing for policy, funds or simulation failures.
        """
        recipient = to_address(to)
        native = token is None or token.is_native
        with self.spend(
            kind="transfer",
            token=None if native else token,
            amount=amount,
            counterparty=recipient,
            idempotency_key=idempotency_key,
            approve=approve,
            chain_id=chain.chain_id,
        ) as spend:
            if not spend.replayed:
                tx = _transfer_tx(recipient, amount, None if native else token)
                tx_hash = chain.send_nowait(
                    self._account,
                    tx,
                    action=f"send {_human(token, amount)}",
                    on_signed=spend.record_transaction,
                )
            elif spend.record.status == "settled":
                return self._result(spend, recipient, amount, token)
            elif spend.record.raw_tx:  # signed before, maybe never sent: the SAME bytes again
                tx_hash = chain.broadcast_raw(HexBytes(spend.record.raw_tx))
            else:
                raise LedgerError(
                    f"spend {spend.key!r} was signed without a stored transaction; "
                    "check it with `bazaar wallet ledger --reconcile`",
                    idempotency_key=spend.key,
                )
            try:
                receipt = chain.wait_for_receipt(tx_hash, timeout=timeout, action="transfer")
            except TransactionReverted as exc:
                spend.fail(f"reverted on chain: {exc.fields.get('reason') or exc}")
                raise
            spend.settle(tx_hash=HexBytes(tx_hash).to_0x_hex(), block_number=receipt["blockNumber"])
            return self._result(spend, recipient, amount, token)

    def _result(
        self, spend: Spend, to: ChecksumAddress, amount: int, token: Token | None
    ) -> SendResult:
        rec = spend.record
        return SendResult(
            idempotency_key=rec.idempotency_key,
            tx_hash=rec.tx_hash or "",
            block_number=rec.block_number,
            status=rec.status,
            replayed=spend.replayed,
            amount=amount,
            token=token.symbol if token else "ETH",
            to=to,
            record=rec,
        )

    def balance(self, chain: Chain, tokens: TokenRegistry) -> list[Balance]:
        return balances(chain, self.address, tokens)


def balances(chain: Chain, address: str, tokens: TokenRegistry) -> list[Balance]:
    """Native and every known token's balance of ``address``."""
    addr = to_address(address)
    out = []
    for token in tokens.all():
        if token.is_native:
            units = chain.native_balance(addr)
        else:
            contract = chain.contract(cast(str, token.address), _ERC20_ABI)
            units = int(chain.call(contract.functions.balanceOf(addr)))
        out.append(Balance(token, units))
    return out


def open_wallet(
    cfg: BazaarConfig,
    name: str,
    passphrase: str | None = None,
    *,
    prompt: Callable[[str], str] | None = None,
    approver: Approver | None = None,
    ledger: Ledger | None = None,
) -> Wallet:
    """Unlock wallet ``name`` of the data directory (passphrase: argument, env, or prompt).

    The wallet resolves the other wallet names of the directory (``Wallet.resolve``) with the
    same passphrase, through the sealed address book."""
    store = KeyStore(cfg.keystore_dir)
    store.require(name)  # UnknownWallet before asking for a passphrase
    secret = passphrase or passphrase_from_env_or_prompt(prompt)
    account = store.unlock(name, secret)
    policies = PolicyStore(cfg.policy_dir)
    return Wallet(
        name,
        account,
        lambda: policies.load(name),
        ledger or Ledger(cfg.ledger_path),
        approver=approver,
        names=lambda other: store.address_of(other, secret),
    )


def write_default_policy(cfg: BazaarConfig, name: str, tokens: TokenRegistry) -> SpendingPolicy:
    """Give a new wallet the default policy (``policy.default_policy``) over the tokens known
    here, unless it has a policy file already; returns the policy it now has."""
    store = PolicyStore(cfg.policy_dir)
    if store.exists(name):
        return store.load(name)
    known = [(t.symbol, token_key(t.address), t.decimals) for t in tokens.all()]
    policy = default_policy(known)
    store.save(name, policy)
    return policy


# ---- helpers ---------------------------------------------------------------------------------
_ERC20_ABI: list[dict[str, Any]] = [
    {
        "name": "balanceOf",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
]


def _transfer_tx(to: ChecksumAddress, amount: int, token: Token | None) -> TxParams:
    if token is None:
        return cast(TxParams, {"to": to, "value": amount})
    data = TRANSFER_SELECTOR + bytes(HexBytes(to)).rjust(32, b"\0") + amount.to_bytes(32, "big")
    return cast(TxParams, {"to": to_address(cast(str, token.address)), "data": data, "value": 0})


def _human(token: Token | None, amount: int) -> str:
    return token.format(amount) if token else f"{format_units(amount, 18)} ETH"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BazaarError):
        return f"{type(exc).__name__}: {exc.message}"
    return type(exc).__name__


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, HexBytes)):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


__all__ = [
    "Approver",
    "Balance",
    "SendResult",
    "Spend",
    "Wallet",
    "balances",
    "open_wallet",
    "write_default_policy",
]
