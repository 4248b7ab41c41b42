"""Facilitator handlers for payments signed through Permit2: ``upto``, and ``exact`` for tokens
without EIP-3009.

``upto`` (metered): the payer signs a maximum with a witness naming the payee and this
facilitator; the seller's route reports what was used and the settle request carries that amount
(the SDK's resource server puts it in ``requirements.amount``); we settle at most the maximum,
once, through the x402 upto proxy (which only the named facilitator may call).
``exact`` with Permit2: the payer signs the price for the x402 exact proxy; we settle exactly it.

Verify runs the checks that need no chain (shape, scheme, network, token, spender, payee,
facilitator, deadline, start time, amount), the signature (ECDSA locally; ERC-1271 and ERC-6492
through ``SmartAccounts``), reserves the authorization in the store (one lease per permit until
its deadline, as ``exact.py`` does: a second verify while it is held is
``authorization_in_use``; ``release`` gives it back), then simulates the proxy's ``settle`` from
our account. Settle repeats the checks, claims the authorization in the
``SettlementStore`` (key: network, Permit2, payer, nonce: Permit2's own nonce space, shared by
both schemes), deploys a counterfactual wallet if needed, and sends the proxy call once
(``OnchainSettler``). Refusals carry the SDK's reason codes.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from web3.types import TxParams
from x402.mechanisms.evm import constants as c
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse, VerifyResponse

from agentbazaar.chain import Chain
from agentbazaar.errors import AmountError, BazaarError, TransactionReverted
from agentbazaar.payments import permit2 as p2
from agentbazaar.payments.eip3009 import (
    ERR_INVALID_PAYLOAD,
    ERR_UNSUPPORTED_ASSET,
    ERR_UNSUPPORTED_VERSION,
)
from agentbazaar.payments.errors import Rejected
from agentbazaar.payments.settling import OnchainSettler, Settlement, fail
from agentbazaar.payments.smart_accounts import PayerSignature, SmartAccounts, ecdsa_signer
from agentbazaar.payments.store import SettlementKey
from agentbazaar.primitives import parse_base_units

log = logging.getLogger(__name__)

DEADLINE_MARGIN = c.PERMIT2_DEADLINE_BUFFER  # seconds a permit must still be valid at verify
_BALANCE_OF = keccak(b"balanceOf(address)")[:4]
_ALLOWANCE = keccak(b"allowance(address,address)")[:4]
_NONCE_BITMAP = keccak(b"nonceBitmap(address,uint256)")[:4]


class Permit2Handler:
    """A scheme paid with Permit2 through one x402 proxy (see ``UptoEvmHandler`` and
    ``ExactPermit2Handler``)."""

    scheme: str
    spender: str
    upto: bool
    scheme_error: str
    network_error: str

    def __init__(
        self,
        chain: Chain,
        account: LocalAccount,
        settler: OnchainSettler,
        accounts: SmartAccounts,
        *,
        assets: frozenset[str] | None = None,
    ) -> None:
        self.chain = chain
        self.account = account
        self.settler = settler
        self.accounts = accounts
        self.assets = assets
        self.verified = 0

    # ---- facts -----------------------------------------------------------------------------
    @property
    def networks(self) -> frozenset[str]:
        return frozenset({self.chain.network})

    def signers(self) -> list[str]:
        return [self.account.address]

    def extra(self, network: str) -> dict[str, Any] | None:
        return None

    def metrics_snapshot(self) -> dict[str, int]:
        """This handler's counters, named after its scheme and Permit2 (``upto_settled``,
        ``exact_permit2_settled``, ...)."""
        m = self.settler.metrics
        name = "upto" if self.upto else "exact_permit2"
        counts = {"settled": m.settled, "failed": m.failed, "rejected": m.rejected}
        counts.update(repeats=m.repeats, verified=self.verified, not_broadcast=m.not_broadcast)
        return {f"{name}_{k}": v for k, v in counts.items()}

    def recover(self) -> int:
        return self.settler.recover()

    # ---- checks without the chain ------------------------------------------------------------
    def _parse(self, payload: PaymentPayload) -> p2.Permit2Authorization:
        if not p2.is_permit2_payload(payload.payload):
            raise Rejected(ERR_INVALID_PAYLOAD, "not a Permit2 payload (no permit2Authorization)")
        return p2.parse_permit2(payload.payload, upto=self.upto)

    def _check_terms(
        self, payload: PaymentPayload, req: PaymentRequirements, auth: p2.Permit2Authorization
    ) -> None:
        """Everything but the amount and the signature; raises ``Rejected``."""
        payer, accepted = auth.payer, payload.accepted
        if payload.x402_version != 2:
            raise Rejected(ERR_UNSUPPORTED_VERSION, "only x402 v2 payloads are accepted", payer)
        if accepted.scheme != self.scheme or req.scheme != self.scheme:
            raise Rejected(self.scheme_error, f"this handler settles {self.scheme}", payer)
        if accepted.network != req.network or req.network not in self.networks:
            raise Rejected(self.network_error, f"network {req.network} is not served", payer)
        asset = req.asset.lower()
        if self.assets is not None and asset not in self.assets:
            raise Rejected(ERR_UNSUPPORTED_ASSET, f"asset {req.asset} is not accepted", payer)
        if accepted.asset.lower() != asset or auth.token.lower() != asset:
            raise Rejected(c.ERR_PERMIT2_TOKEN_MISMATCH, "the permit is for another token", payer)
        if auth.spender.lower() != self.spender.lower():
            raise Rejected(c.ERR_PERMIT2_INVALID_SPENDER, f"spender must be {self.spender}", payer)
        pay_to = req.pay_to.lower()
        if auth.to.lower() != pay_to or accepted.pay_to.lower() != pay_to:
            raise Rejected(c.ERR_PERMIT2_RECIPIENT_MISMATCH, "the permit pays someone else", payer)
        if (
            auth.facilitator is not None
            and auth.facilitator.lower() != self.account.address.lower()
        ):
            message = "the permit names another facilitator"
            raise Rejected(c.ERR_UPTO_FACILITATOR_MISMATCH, message, payer)
        now = int(time.time())
        if auth.deadline < now + DEADLINE_MARGIN:
            raise Rejected(
                c.ERR_PERMIT2_DEADLINE_EXPIRED, "the permit's deadline has passed", payer
            )
        if auth.valid_after > now:
            raise Rejected(c.ERR_PERMIT2_NOT_YET_VALID, "the permit is not valid yet", payer)
        if auth.amount == 0:
            raise Rejected(p2.ERR_INVALID_AMOUNT, "the permit allows nothing", payer)

    def _check_maximum(
        self, payload: PaymentPayload, req: PaymentRequirements, auth: p2.Permit2Authorization
    ) -> None:
        """At verify the requirement's amount is the price (``upto``: the maximum): the permit
        must allow exactly it, as the client accepted it."""
        if not _amount_is(req.amount, auth.amount) or not _amount_is(
            payload.accepted.amount, auth.amount
        ):
            raise Rejected(
                c.ERR_PERMIT2_AMOUNT_MISMATCH, "the permit is for another amount", auth.payer
            )

    def settle_amount(
        self, payload: PaymentPayload, req: PaymentRequirements, auth: p2.Permit2Authorization
    ) -> int:
        """What a settle request moves (``exact``: the permitted amount; ``upto`` overrides)."""
        self._check_maximum(payload, req, auth)
        return auth.amount

    def _key(self, req: PaymentRequirements, auth: p2.Permit2Authorization) -> SettlementKey:
        return SettlementKey.of(req.network, p2.PERMIT2_ADDRESS, auth.payer, auth.nonce_hex)

    # ---- checks on the chain -----------------------------------------------------------------
    def _payer_signature(self, auth: p2.Permit2Authorization, amount: int) -> PayerSignature:
        """The payer's signature, checked; an EOA's costs no chain call."""
        digest = p2.permit2_digest(auth, self.chain.chain_id)
        if len(auth.signature) == 65 and ecdsa_signer(digest, auth.signature) == auth.payer.lower():
            return PayerSignature(auth.payer, auth.signature)
        invalid = c.ERR_PERMIT2_INVALID_SIGNATURE
        sig = self.accounts.classify(auth.payer, auth.signature, invalid)
        after = self._wallet_reads(auth) if sig.counterfactual else ()
        reads = self.accounts.check(sig, digest, invalid, after)
        if sig.counterfactual:
            self._check_wallet_reads(auth, amount, reads)
        return sig

    def _wallet_reads(self, auth: p2.Permit2Authorization) -> tuple[tuple[str, bytes], ...]:
        """What Permit2 will need of a wallet once deployed: balance, allowance, nonce bit."""
        owner = auth.payer
        return (
            (auth.token, _BALANCE_OF + abi_encode(["address"], [owner])),
            (
                auth.token,
                _ALLOWANCE + abi_encode(["address", "address"], [owner, p2.PERMIT2_ADDRESS]),
            ),
            (
                p2.PERMIT2_ADDRESS,
                _NONCE_BITMAP + abi_encode(["address", "uint256"], [owner, auth.nonce >> 8]),
            ),
        )

    def _check_wallet_reads(
        self, auth: p2.Permit2Authorization, amount: int, reads: list[tuple[bool, bytes]]
    ) -> None:
        words = [
            int.from_bytes(out[:32], "big") if ok and len(out) >= 32 else -1 for ok, out in reads
        ]
        balance, allowance, bitmap = words
        if bitmap < 0 or bitmap >> (auth.nonce & 255) & 1:
            raise Rejected(p2.ERR_INVALID_NONCE, "the permit's nonce is used", auth.payer)
        if balance < amount:
            raise Rejected(c.ERR_PERMIT2_INSUFFICIENT_BALANCE, "balance too low", auth.payer)
        if allowance < amount:
            raise Rejected(c.ERR_PERMIT2_ALLOWANCE_REQUIRED, "Permit2 is not approved", auth.payer)

    def _settle_tx(
        self, auth: p2.Permit2Authorization, sig: PayerSignature, amount: int
    ) -> dict[str, Any]:
        return {
            "to": self.spender,
            "data": p2.settle_calldata(auth, amount, sig.inner),
            "from": self.account.address,
        }

    def _simulate(self, auth: p2.Permit2Authorization, sig: PayerSignature, amount: int) -> None:
        """The proxy's ``settle`` as an ``eth_call`` from our account; ``Rejected`` if it reverts."""
        ok, out = self.chain.try_call(cast(TxParams, self._settle_tx(auth, sig, amount)))
        if not ok:
            raise Rejected(
                self._reason(auth, amount, out), "the settlement would revert", auth.payer
            )

    def _reason(self, auth: p2.Permit2Authorization, amount: int, revert: bytes) -> str:
        code = p2.revert_code(revert)
        if code is not None:
            return code
        # the token refused the transfer (TRANSFER_FROM_FAILED): say why
        reads = [
            self.chain.try_call(cast(TxParams, {"to": t, "data": "0x" + d.hex()}))
            for t, d in self._wallet_reads(auth)[:2]
        ]
        balance, allowance = (
            int.from_bytes(o[:32], "big") if ok and len(o) >= 32 else 0 for ok, o in reads
        )
        if balance < amount:
            return c.ERR_PERMIT2_INSUFFICIENT_BALANCE
        if allowance < amount:
            return c.ERR_PERMIT2_ALLOWANCE_REQUIRED
        return c.ERR_TRANSACTION_SIMULATION_FAILED

    # ---- verify ------------------------------------------------------------------------------
    def _verify_sync(self, payload: PaymentPayload, req: PaymentRequirements) -> VerifyResponse:
        auth = self._parse(payload)
        self._check_terms(payload, req, auth)
        self._check_maximum(payload, req, auth)
        self.settler.throttle.check(auth.payer)
        sig = self._payer_signature(auth, auth.amount)
        settlement = self._settlement(req, auth, auth.amount)
        token = self.settler.reserve(settlement, float(auth.deadline))
        try:
            if not sig.counterfactual:
                self._simulate(auth, sig, auth.amount)
        except BaseException:
            self.settler.release(settlement.key, token)
            raise
        extra = {"reservation": token, "reservedUntil": auth.deadline}
        return VerifyResponse(is_valid=True, payer=auth.payer, extra=extra)

    def _settlement(
        self, req: PaymentRequirements, auth: p2.Permit2Authorization, amount: int
    ) -> Settlement:
        return Settlement(
            key=self._key(req, auth),
            network=req.network,
            payer=auth.payer,
            pay_to=auth.to,
            amount=amount,
            signature="0x" + auth.signature.hex(),
            replay_reason=p2.ERR_INVALID_NONCE,
        )

    async def release(self, payload: PaymentPayload, req: PaymentRequirements, token: str) -> bool:
        """Give back the reservation ``token`` (the seller served nothing): a later verify of
        the same permit may take it."""
        try:
            auth = self._parse(payload)
        except Rejected:
            return False
        key = self._key(req, auth)
        return await self.settler.run(lambda: self.settler.release(key, token))

    async def verify(self, payload: PaymentPayload, req: PaymentRequirements) -> VerifyResponse:
        try:
            result = await self.settler.run(lambda: self._verify_sync(payload, req))
        except Rejected as exc:
            self.settler.metrics.rejected += 1
            return VerifyResponse(
                is_valid=False,
                invalid_reason=exc.reason,
                invalid_message=exc.message,
                payer=exc.payer or _payer_hint(payload),
            )
        except BazaarError as exc:  # the chain could not be asked: refuse, never guess
            self.settler.metrics.rejected += 1
            return VerifyResponse(
                is_valid=False,
                invalid_reason=c.ERR_TRANSACTION_SIMULATION_FAILED,
                invalid_message=str(exc),
                payer=_payer_hint(payload),
            )
        self.verified += 1
        return result

    # ---- settle ------------------------------------------------------------------------------
    async def settle(self, payload: PaymentPayload, req: PaymentRequirements) -> SettleResponse:
        try:
            auth = self._parse(payload)
            self._check_terms(payload, req, auth)
            amount = self.settle_amount(payload, req, auth)
        except Rejected as exc:
            self.settler.metrics.rejected += 1
            return fail(req.network, exc.reason, exc.message, exc.payer or _payer_hint(payload))
        settlement = self._settlement(req, auth, amount)

        checked: list[PayerSignature] = []

        def prepare() -> dict[str, Any] | None:
            sig = self._payer_signature(auth, amount)
            checked.append(sig)
            self.accounts.deploy(self.account, sig)
            if amount == 0:
                return None  # nothing moves; the authorization is spent in our records
            # no gas limit: the send estimates it against the latest state, which is the
            # simulation right before signing (the payer may have moved funds since verify)
            return self._settle_tx(auth, sig, amount)

        def diagnose(exc: TransactionReverted) -> str:
            sig = checked[-1] if checked else PayerSignature(auth.payer, auth.signature)
            ok, out = self.chain.try_call(cast(TxParams, self._settle_tx(auth, sig, amount)))
            return c.ERR_TRANSACTION_FAILED if ok else self._reason(auth, amount, out)

        return await self.settler.settle(settlement, prepare, diagnose)


class UptoEvmHandler(Permit2Handler):
    """The ``upto`` scheme: settles the amount the seller reports, at most the signed maximum."""

    scheme = c.SCHEME_UPTO
    spender = p2.UPTO_PROXY_ADDRESS
    upto = True
    scheme_error = c.ERR_UPTO_INVALID_SCHEME
    network_error = c.ERR_UPTO_NETWORK_MISMATCH

    def extra(self, network: str) -> dict[str, Any] | None:
        """Clients put this address in the witness: only it may settle their permits."""
        return {"facilitatorAddress": self.account.address}

    def settle_amount(
        self, payload: PaymentPayload, req: PaymentRequirements, auth: p2.Permit2Authorization
    ) -> int:
        """The seller's reported usage (``requirements.amount``), at most the signed maximum
        the client accepted."""
        if not _amount_is(payload.accepted.amount, auth.amount):
            raise Rejected(
                c.ERR_PERMIT2_AMOUNT_MISMATCH, "the permit is for another amount", auth.payer
            )
        try:
            amount = parse_base_units(req.amount)
        except AmountError as exc:
            raise Rejected(
                ERR_INVALID_PAYLOAD, "requirements.amount must be base units", auth.payer
            ) from exc
        if amount > auth.amount:
            raise Rejected(
                c.ERR_UPTO_SETTLEMENT_EXCEEDS_AMOUNT,
                f"settlement of {amount} exceeds the authorized maximum {auth.amount}",
                auth.payer,
            )
        return amount


class ExactPermit2Handler(Permit2Handler):
    """``exact`` paid with Permit2 (tokens without EIP-3009): the permitted amount, once."""

    scheme = c.SCHEME_EXACT
    spender = p2.EXACT_PROXY_ADDRESS
    upto = False
    scheme_error = c.ERR_UNSUPPORTED_SCHEME
    network_error = c.ERR_NETWORK_MISMATCH


def _amount_is(text: str, amount: int) -> bool:
    try:
        return parse_base_units(text) == amount
    except AmountError:
        return False


def _payer_hint(payload: PaymentPayload) -> str | None:
    auth = payload.payload.get("permit2Authorization")
    payer = auth.get("from") if isinstance(auth, dict) else None
    return payer if isinstance(payer, str) else None
