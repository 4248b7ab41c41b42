"""Scheme ``exact`` for every payer and token: EOAs, contract wallets, and Permit2.

``ExactRouter`` is the facilitator's one handler for ``exact``. It sends each payment to the
handler for its kind, without touching the fast path:

- an EIP-3009 authorization with a 65-byte signature goes to ``ExactEvmHandler`` (EOAs). If that
  refuses the signature and the payer is a contract, it goes to ``ContractWalletExactHandler``
  (a deployed wallet's 65-byte ERC-1271 signature);
- an EIP-3009 authorization with any other signature (ERC-1271 of any length, ERC-6492 of a
  wallet not deployed yet) goes to ``ContractWalletExactHandler``;
- a Permit2 payload (``permit2Authorization``, tokens without EIP-3009) goes to
  ``ExactPermit2Handler`` (``permit2_schemes``).

``ContractWalletExactHandler`` checks the signature through ``SmartAccounts`` (ERC-1271 with the
wallet, ERC-6492 by simulating the factory call and the transfer together), reserves the
authorization for one request (``OnchainSettler.reserve``), simulates the
token's ``transferWithAuthorization(..., bytes signature)``, and settles once through
``OnchainSettler`` (key: network, token, payer, nonce), deploying a counterfactual wallet first.
"""

from __future__ import annotations

import time
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from web3.types import TxParams
from x402.mechanisms.evm import constants as c
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse, VerifyResponse

from agentbazaar.chain import Chain
from agentbazaar.errors import BazaarError, TransactionReverted
from agentbazaar.payments.eip3009 import (
    Authorization,
    check_requirements,
    map_revert,
    parse_authorization,
    payer_hint,
    transfer_bytes_calldata,
    transfer_digest,
)
from agentbazaar.payments.errors import Rejected
from agentbazaar.payments.facilitator import SchemeHandler
from agentbazaar.payments.permit2 import is_permit2_payload
from agentbazaar.payments.permit2_schemes import ExactPermit2Handler
from agentbazaar.payments.settling import OnchainSettler, Settlement, fail
from agentbazaar.payments.smart_accounts import PayerSignature, SmartAccounts
from agentbazaar.payments.store import SettlementKey

_EOA_SIGNATURE_HEX = 2 + 130


class ContractWalletExactHandler:
    """``exact`` (EIP-3009) paid by a contract wallet, deployed (ERC-1271) or not (ERC-6492)."""

    scheme = c.SCHEME_EXACT

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

    @property
    def networks(self) -> frozenset[str]:
        return frozenset({self.chain.network})

    def signers(self) -> list[str]:
        return [self.account.address]

    def extra(self, network: str) -> dict[str, Any] | None:
        return None

    def recover(self) -> int:
        return self.settler.recover()

    def _checked(self, payload: PaymentPayload, req: PaymentRequirements) -> Authorization:
        auth = parse_authorization(payload.payload, any_signature=True)
        check_requirements(
            payload, req, auth, networks=self.networks, assets=self.assets, now=int(time.time())
        )
        return auth

    def _digest(self, req: PaymentRequirements, auth: Authorization) -> bytes:
        extra = req.extra or {}
        name, version = str(extra["name"]), str(extra["version"])
        return transfer_digest(auth, self.chain.chain_id, req.asset, name, version)

    def _signature(self, req: PaymentRequirements, auth: Authorization) -> PayerSignature:
        """The wallet's signature, checked; for a counterfactual wallet the transfer itself is
        simulated right after the (simulated) deployment."""
        invalid = c.ERR_INVALID_SIGNATURE
        sig = self.accounts.classify(auth.payer, auth.signature, invalid)
        after = [(req.asset, bytes.fromhex(transfer_bytes_calldata(auth, sig.inner)[2:]))]
        reads = self.accounts.check(
            sig, self._digest(req, auth), invalid, after if sig.counterfactual else ()
        )
        if sig.counterfactual and not reads[0][0]:
            raise Rejected(self._reason(reads[0][1]), "the transfer would revert", auth.payer)
        return sig

    def _transfer_tx(
        self, req: PaymentRequirements, auth: Authorization, sig: PayerSignature
    ) -> dict[str, Any]:
        return {
            "to": req.asset,
            "data": transfer_bytes_calldata(auth, sig.inner),
            "from": self.account.address,
        }

    def _reason(self, revert: bytes) -> str:
        """The x402 reason of a reverted transfer (the token's ``Error(string)``)."""
        text = revert[68:].rstrip(b"\0").decode(errors="replace") if len(revert) > 68 else ""
        return map_revert(text) if text else c.ERR_TRANSACTION_SIMULATION_FAILED

    def _simulate(self, req: PaymentRequirements, auth: Authorization, sig: PayerSignature) -> None:
        ok, out = self.chain.try_call(cast(TxParams, self._transfer_tx(req, auth, sig)))
        if not ok:
            raise Rejected(self._reason(out), "the transfer would revert", auth.payer)

    def _key(self, req: PaymentRequirements, auth: Authorization) -> SettlementKey:
        return SettlementKey.of(req.network, req.asset, auth.payer, auth.nonce_hex)

    def _verify_sync(self, payload: PaymentPayload, req: PaymentRequirements) -> VerifyResponse:
        auth = self._checked(payload, req)
        self.settler.throttle.check(auth.payer)
        sig = self._signature(req, auth)
        settlement = self._settlement(req, auth)
        token = self.settler.reserve(settlement, float(auth.valid_before))
        try:
            if not sig.counterfactual:
                self._simulate(req, auth, sig)
        except BaseException:
            self.settler.release(settlement.key, token)
            raise
        extra = {"reservation": token, "reservedUntil": auth.valid_before}
        return VerifyResponse(is_valid=True, payer=auth.payer, extra=extra)

    def _settlement(self, req: PaymentRequirements, auth: Authorization) -> Settlement:
        return Settlement(
            key=self._key(req, auth),
            network=req.network,
            payer=auth.payer,
            pay_to=auth.to,
            amount=auth.value,
            signature="0x" + auth.signature.hex(),
            replay_reason=c.ERR_NONCE_ALREADY_USED,
        )

    async def release(self, payload: PaymentPayload, req: PaymentRequirements, token: str) -> bool:
        """Give back the reservation ``token`` (the seller served nothing)."""
        try:
            auth = parse_authorization(payload.payload, any_signature=True)
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
                payer=exc.payer or payer_hint(payload),
            )
        except BazaarError as exc:
            return VerifyResponse(
                is_valid=False,
                invalid_reason=c.ERR_TRANSACTION_SIMULATION_FAILED,
                invalid_message=str(exc),
                payer=payer_hint(payload),
            )
        self.verified += 1
        return result

    async def settle(self, payload: PaymentPayload, req: PaymentRequirements) -> SettleResponse:
        try:
            auth = self._checked(payload, req)
        except Rejected as exc:
            return fail(req.network, exc.reason, exc.message, exc.payer or payer_hint(payload))
        settlement = self._settlement(req, auth)
        checked: list[PayerSignature] = []

        def prepare() -> dict[str, Any]:
            sig = self._signature(req, auth)
            checked.append(sig)
            self.accounts.deploy(self.account, sig)
            return self._transfer_tx(req, auth, sig)

        def diagnose(exc: TransactionReverted) -> str:
            sig = checked[-1] if checked else PayerSignature(auth.payer, auth.signature)
            ok, out = self.chain.try_call(cast(TxParams, self._transfer_tx(req, auth, sig)))
            return c.ERR_TRANSACTION_FAILED if ok else self._reason(out)

        return await self.settler.settle(settlement, prepare, diagnose)


class ExactRouter:
    """The facilitator's ``exact`` handler: routes each payment to the handler for its kind."""

    scheme = c.SCHEME_EXACT

    def __init__(
        self,
        eoa: SchemeHandler,
        contract_wallets: ContractWalletExactHandler | None = None,
        permit2: ExactPermit2Handler | None = None,
    ) -> None:
        self.eoa = eoa
        self.contract_wallets = contract_wallets
        self.permit2 = permit2

    @property
    def networks(self) -> frozenset[str]:
        return self.eoa.networks

    def signers(self) -> list[str]:
        return self.eoa.signers()

    def extra(self, network: str) -> dict[str, Any] | None:
        return self.eoa.extra(network)

    def _route(self, payload: PaymentPayload) -> SchemeHandler | None:
        if is_permit2_payload(payload.payload):
            return self.permit2
        signature = payload.payload.get("signature")
        if isinstance(signature, str) and len(signature) != _EOA_SIGNATURE_HEX:
            return self.contract_wallets
        return self.eoa

    async def _wallet_fallback(self, payload: PaymentPayload, reason: str | None) -> bool:
        """A 65-byte signature the EOA path refused may be a deployed wallet's (ERC-1271)."""
        if self.contract_wallets is None or reason != c.ERR_INVALID_SIGNATURE:
            return False
        payer = payer_hint(payload)
        if payer is None:
            return False
        chain = self.contract_wallets.chain
        try:
            code = await self.contract_wallets.settler.run(lambda: chain.code_at(payer))
        except BazaarError:
            return False
        return len(code) > 0

    async def verify(self, payload: PaymentPayload, req: PaymentRequirements) -> VerifyResponse:
        handler = self._route(payload)
        if handler is None:
            return _unsupported_verify(payload)
        result = await handler.verify(payload, req)
        if handler is self.eoa and not result.is_valid:
            if await self._wallet_fallback(payload, result.invalid_reason):
                assert self.contract_wallets is not None
                return await self.contract_wallets.verify(payload, req)
        return result

    async def settle(self, payload: PaymentPayload, req: PaymentRequirements) -> SettleResponse:
        handler = self._route(payload)
        if handler is None:
            return fail(
                req.network,
                c.ERR_UNSUPPORTED_SCHEME,
                "payload kind not served",
                payer_hint(payload),
            )
        result = await handler.settle(payload, req)
        if handler is self.eoa and not result.success:
            if await self._wallet_fallback(payload, result.error_reason):
                assert self.contract_wallets is not None
                return await self.contract_wallets.settle(payload, req)
        return result

    async def release(self, payload: PaymentPayload, req: PaymentRequirements, token: str) -> bool:
        """Give back a reservation to the handler that made it (the EOA handler refused the
        signature of a deployed wallet: the wallet handler's)."""
        for handler in (self._route(payload), self.contract_wallets):
            release = getattr(handler, "release", None)
            if callable(release) and await release(payload, req, token):
                return True
        return False

    def _parts(self) -> list[Any]:
        return [h for h in (self.eoa, self.contract_wallets, self.permit2) if h is not None]

    def metrics_snapshot(self) -> dict[str, int]:
        out: dict[str, int] = {}
        snapshot = getattr(self.eoa, "metrics_snapshot", None)
        if callable(snapshot):
            out.update(snapshot())
        if self.contract_wallets is not None:
            m = self.contract_wallets.settler.metrics
            out.update(wallet_settled=m.settled, wallet_rejected=m.rejected)
        if self.permit2 is not None:
            out.update(self.permit2.metrics_snapshot())
        return out

    def recover(self) -> int:
        done = 0
        for part in self._parts():
            recover = getattr(part, "recover", None)
            if callable(recover):
                done += int(recover())
        return done


def _unsupported_verify(payload: PaymentPayload) -> VerifyResponse:
    return VerifyResponse(
        is_valid=False,
        invalid_reason=c.ERR_UNSUPPORTED_SCHEME,
        invalid_message="this kind of exact payment is not served here",
        payer=payer_hint(payload),
    )
