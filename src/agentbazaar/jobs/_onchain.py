"""What the job and stake clients share: sending a contract call for a wallet (simulated first,
reverts mapped to typed errors), and paying with an EIP-3009 ReceiveWithAuthorization signed
inside ``Wallet.spend`` (policy, then ledger, then key)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from agentbazaar.chain import Chain, to_address
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.errors import TransactionReverted
from agentbazaar.jobs import model
from agentbazaar.jobs.errors import refusal
from agentbazaar.tokens import Token
from agentbazaar.wallet import Wallet


@dataclass(frozen=True)
class TxResult:
    """A mined transaction of the job layer."""

    tx_hash: str
    block_number: int
    gas_used: int

    @classmethod
    def of(cls, receipt: TxReceipt) -> TxResult:
        return cls(
            HexBytes(receipt["transactionHash"]).to_0x_hex(),
            int(receipt["blockNumber"]),
            int(receipt["gasUsed"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"tx_hash": self.tx_hash, "block": self.block_number, "gas_used": self.gas_used}


@dataclass(frozen=True)
class Authorization:
    """A signed ReceiveWithAuthorization (as the contracts take it) and its ledger key."""

    valid_after: int
    valid_before: int
    signature: bytes
    idempotency_key: str


class Contracts:
    """A chain, a stablecoin and calls to contracts that take it by EIP-3009."""

    def __init__(self, chain: Chain, token_address: str) -> None:
        self.chain = chain
        self.token_contract = chain.contract(token_address, compile_contract("Stablecoin").abi)
        self._token: Token | None = None
        self._domain: dict[str, Any] | None = None

    # ---- the token ---------------------------------------------------------------------------
    @property
    def token(self) -> Token:
        """The stablecoin as a ``Token`` (symbol, decimals, EIP-712 domain), read once."""
        if self._token is None:
            fns = self.token_contract.functions
            domain = self.domain
            self._token = Token(
                symbol=str(self.chain.call(fns.symbol())),
                decimals=int(self.chain.call(fns.decimals())),
                address=to_address(self.token_contract.address),
                eip712_name=domain["name"],
                eip712_version=domain["version"],
            )
        return self._token

    @property
    def domain(self) -> dict[str, Any]:
        if self._domain is None:
            raw = self.chain.call(self.token_contract.functions.eip712Domain())
            self._domain = model.token_domain(raw)
        return self._domain

    def balance(self, address: str) -> int:
        return int(self.chain.call(self.token_contract.functions.balanceOf(to_address(address))))

    # ---- calls -------------------------------------------------------------------------------
    def send(self, wallet: Wallet, fn: ContractFunction, action: str, **fields: Any) -> TxReceipt:
        """Send ``fn`` from ``wallet``'s account; a refusal (simulated before anything is signed,
        or on chain) becomes the typed ``JobRefused`` for ``action``.

        The transaction itself moves none of the wallet's tokens: what it pays (if anything)
        was authorized with ``authorize`` inside ``Wallet.spend``."""
        try:
            return self.chain.transact(wallet.account_for_deploy(), fn)
        except TransactionReverted as exc:
            raise refusal(action, self._explained(wallet, fn, exc), **fields) from exc

    def _explained(
        self, wallet: Wallet, fn: ContractFunction, exc: TransactionReverted
    ) -> TransactionReverted:
        """A transaction that passed its simulation but reverted when mined (the clock or the
        state moved in between, e.g. a job expired) is replayed on the parent block, where it
        passes: simulate it again now for the contract's own reason."""
        if not exc.fields.get("tx_hash"):
            return exc
        try:
            self.chain.call(fn, sender=wallet.address)
        except TransactionReverted as now:
            return now
        return exc

    def precheck(
        self, wallet: Wallet, unsigned: ContractFunction, action: str, **fields: Any
    ) -> None:
        """Simulate a paying call with an empty authorization: every check of the contract
        runs before it collects, so a refusal of its own ("job: ...", "dispute: ...",
        "stake: ...") is raised before the wallet signs anything; the token's refusal of the
        empty signature is what a call that would go through meets."""
        try:
            self.chain.call(unsigned, sender=wallet.address)
        except TransactionReverted as exc:
            reason = str(exc.fields.get("reason") or "")
            if (
                reason.startswith(("job: ", "dispute: ", "stake: "))
                and "did not arrive" not in reason
            ):
                raise refusal(action, exc, **fields) from exc

    def call(self, fn: ContractFunction, action: str, **fields: Any) -> Any:
        try:
            return self.chain.call(fn)
        except TransactionReverted as exc:
            raise refusal(action, exc, **fields) from exc

    def authorize(
        self,
        wallet: Wallet,
        *,
        kind: str,
        to: str,
        amount: int,
        nonce: bytes,
        counterparty: str,
        approve: bool,
        memo: Mapping[str, Any],
        valid_for: int = 3_600,
    ) -> Authorization:
        """Sign (through ``wallet.spend``: policy, ledger, key) an EIP-3009 authorization of
        ``amount`` from the wallet to contract ``to``, keyed like ``PolicySigner``
        (``eip3009:<token>:<nonce>``): asking again for the same nonce returns the stored
        signature instead of paying twice; one that expired unused is released and signed anew."""
        token = self.token
        key = f"eip3009:{str(token.address).lower()}:0x{nonce.hex()}"
        self._release_if_expired(wallet, key, nonce)
        with wallet.spend(
            kind=kind,
            token=token,
            amount=amount,
            counterparty=counterparty,
            idempotency_key=key,
            approve=approve,
            memo={**memo, "primary_type": "ReceiveWithAuthorization", "to": to},
            chain_id=self.chain.chain_id,
        ) as spend:
            if spend.replayed and spend.payload is not None:
                message = spend.payload["message"]
                signature = str(spend.payload["signature"])
            else:
                message = model.receive_authorization(
                    wallet.address, to, amount, self.chain.timestamp() + valid_for, nonce
                )
                signature = spend.sign_typed_data(
                    self.domain,
                    model.RECEIVE_TYPES,
                    message,
                    extra={"primary_type": "ReceiveWithAuthorization"},
                )
        return Authorization(
            int(message["validAfter"]),
            int(message["validBefore"]),
            bytes(HexBytes(signature)),
            key,
        )

    def _release_if_expired(self, wallet: Wallet, key: str, nonce: bytes) -> None:
        """A signed authorization that expired unused can never be used: release it (as
        ``reconcile`` would) so the same key can be signed again."""
        record = wallet.ledger.get(wallet.name, key)
        if record is None or record.status != "signed" or not record.payload:
            return
        valid_before = int(record.payload.get("message", {}).get("validBefore", 0) or 0)
        if not valid_before or self.chain.timestamp() < valid_before:
            return
        used = self.chain.call(
            self.token_contract.functions.authorizationState(wallet.address, nonce)
        )
        if not used:
            wallet.ledger.mark_failed(record.id, "authorization expired unused")

    def settle(self, wallet: Wallet, auth: Authorization, receipt: TxReceipt) -> None:
        """Mark the authorization's spend settled by the transaction that used it."""
        wallet.settle(
            auth.idempotency_key,
            tx_hash=HexBytes(receipt["transactionHash"]).to_0x_hex(),
            block_number=int(receipt["blockNumber"]),
        )


def contract_at(chain: Chain, name: str, address: str) -> Contract:
    return chain.contract(address, compile_contract(name).abi)


def checksum(value: Any) -> ChecksumAddress:
    return to_address(str(value))
