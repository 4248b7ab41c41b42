"""Payers that are contract wallets: ERC-1271 and ERC-6492 signatures, checked as the chain will.

- An account without code signs with ECDSA (checked locally, no chain call).
- A deployed contract wallet (ERC-1271) answers ``isValidSignature(digest, signature)`` with
  ``0x1626ba7e``; we ask it with one ``eth_call``.
- A wallet not deployed yet signs with ERC-6492: ``abi.encode(factory, factoryCalldata,
  signature) ++ 0x6492...6492``. Its factory must be on the facilitator's allowlist (it will be
  called with the facilitator's gas); the check runs the factory call and ``isValidSignature``
  (and whatever else the caller needs to know about the wallet once deployed) in one
  Multicall3 ``tryAggregate`` ``eth_call``, so nothing is deployed to verify. Settlement deploys
  the wallet first (``deploy``), then pays with the inner signature.

Parsing of the ERC-6492 wrapper is the SDK's (``x402.mechanisms.evm.erc6492``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from coincurve import PublicKey
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address
from web3.types import TxParams
from x402.mechanisms.evm import constants as c
from x402.mechanisms.evm.erc6492 import has_deployment_info, parse_erc6492_signature

from agentbazaar.chain import Chain
from agentbazaar.errors import BazaarError
from agentbazaar.payments.errors import Rejected

MULTICALL3_ADDRESS = to_checksum_address(c.MULTICALL3_ADDRESS)
_TRY_AGGREGATE = keccak(b"tryAggregate(bool,(address,bytes)[])")[:4]
_IS_VALID_SIGNATURE = keccak(b"isValidSignature(bytes32,bytes)")[:4]

Call = tuple[str, bytes]  # (target, calldata)


@dataclass(frozen=True)
class PayerSignature:
    """A payer's signature as the chain will see it: ``inner`` is what ecrecover or the wallet
    checks; ``factory`` is set when the wallet still has to be deployed (ERC-6492)."""

    signer: str
    inner: bytes
    factory: str | None = None
    factory_calldata: bytes = b""

    @property
    def counterfactual(self) -> bool:
        return self.factory is not None


_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def ecdsa_signer(digest: bytes, signature: bytes) -> str | None:
    """The lower-cased address behind a 65-byte ECDSA signature, by the rule our contracts
    apply (``lib/signature_checker.vy``: v in {0, 1, 27, 28}, low s), or None."""
    full = signature
    if len(full) != 65 or len(digest) != 32:
        return None
    v = full[64] - 27 if full[64] >= 27 else full[64]
    if v not in (0, 1) or int.from_bytes(full[32:64], "big") > _HALF_N:
        return None
    try:
        public = PublicKey.from_signature_and_message(full[:64] + bytes([v]), digest, hasher=None)
    except Exception:  # coincurve raises plain Exception for a signature with no point
        return None
    return "0x" + keccak(public.format(compressed=False)[1:])[12:].hex()


class SmartAccounts:
    """Checks payer signatures of any kind on ``chain``; ``allowed_factories`` are the ERC-6492
    factories this facilitator will call (none: counterfactual wallets are refused)."""

    def __init__(self, chain: Chain, allowed_factories: Iterable[str] = ()) -> None:
        self.chain = chain
        self.allowed_factories = frozenset(f.lower() for f in allowed_factories)

    def classify(self, signer: str, signature: bytes, invalid_reason: str) -> PayerSignature:
        """Unwrap ERC-6492; a wrapper around an already deployed wallet is just its inner
        signature (the wallet checks it, as on chain)."""
        try:
            parsed = parse_erc6492_signature(signature)
        except ValueError as exc:
            raise Rejected(invalid_reason, f"malformed ERC-6492 signature: {exc}", signer) from exc
        if not has_deployment_info(parsed) or self._has_code(signer):
            return PayerSignature(signer, bytes(parsed.inner_signature))
        factory = "0x" + bytes(parsed.factory).hex()
        if factory.lower() not in self.allowed_factories:
            raise Rejected(
                c.ERR_FACTORY_NOT_ALLOWED, f"ERC-6492 factory {factory} is not allowed", signer
            )
        return PayerSignature(
            signer, bytes(parsed.inner_signature), factory, bytes(parsed.factory_calldata)
        )

    def check(
        self,
        sig: PayerSignature,
        digest: bytes,
        invalid_reason: str,
        after_deploy: Sequence[Call] = (),
    ) -> list[tuple[bool, bytes]]:
        """Raise ``Rejected(invalid_reason)`` unless ``sig`` is the signer's over ``digest``.

        For a counterfactual wallet ``after_deploy`` calls run in the same simulation once the
        wallet exists; their (success, return data) are returned (empty otherwise)."""
        if sig.counterfactual:
            return self._check_counterfactual(sig, digest, invalid_reason, after_deploy)
        if self._has_code(sig.signer):
            if not self._erc1271(sig.signer, digest, sig.inner):
                raise Rejected(invalid_reason, "the wallet rejects the signature", sig.signer)
            return []
        signer = ecdsa_signer(digest, sig.inner)
        if signer is None or signer != sig.signer.lower():
            reason = invalid_reason if len(sig.inner) == 65 else c.ERR_UNDEPLOYED_SMART_WALLET
            raise Rejected(reason, "the signature is not the payer's", sig.signer)
        return []

    def deploy(self, account: LocalAccount, sig: PayerSignature) -> None:
        """Deploy a counterfactual wallet through its (allowed) factory, paying the gas, unless
        it exists by now. Raises ``Rejected`` when it is still not there afterwards."""
        if sig.factory is None or self._has_code(sig.signer):
            return
        tx = {"to": to_checksum_address(sig.factory), "data": "0x" + sig.factory_calldata.hex()}
        try:
            self.chain.send(account, cast(TxParams, tx), action="deploy the payer's wallet")
        except BazaarError as exc:
            raise Rejected(c.ERR_SMART_WALLET_DEPLOYMENT_FAILED, str(exc), sig.signer) from exc
        if not self._has_code(sig.signer):
            raise Rejected(
                c.ERR_SMART_WALLET_DEPLOYMENT_FAILED,
                "the factory call did not deploy the payer's wallet",
                sig.signer,
            )

    # ---- chain reads ------------------------------------------------------------------------
    def _has_code(self, address: str) -> bool:
        return len(self.chain.code_at(address)) > 0

    def _erc1271(self, wallet: str, digest: bytes, signature: bytes) -> bool:
        ok, out = self.chain.try_call(
            cast(
                TxParams,
                {"to": to_checksum_address(wallet), "data": _is_valid_call(digest, signature)},
            )
        )
        return ok and len(out) >= 32 and out[:4] == c.EIP1271_MAGIC_VALUE

    def _check_counterfactual(
        self,
        sig: PayerSignature,
        digest: bytes,
        invalid_reason: str,
        after_deploy: Sequence[Call],
    ) -> list[tuple[bool, bytes]]:
        assert sig.factory is not None
        calls: list[Call] = [
            (sig.factory, sig.factory_calldata),
            (sig.signer, bytes.fromhex(_is_valid_call(digest, sig.inner)[2:])),
            *after_deploy,
        ]
        results = self.multicall(calls)
        if results is None:
            raise Rejected(
                c.ERR_UNDEPLOYED_SMART_WALLET,
                "no Multicall3 on this chain to simulate the wallet's deployment",
                sig.signer,
            )
        (deployed, _), (answered, out), *rest = results
        if not deployed:
            raise Rejected(
                c.ERR_SMART_WALLET_DEPLOYMENT_FAILED, "the factory call reverts", sig.signer
            )
        if not answered or len(out) < 32 or out[:4] != c.EIP1271_MAGIC_VALUE:
            raise Rejected(invalid_reason, "the wallet would reject the signature", sig.signer)
        return rest

    def multicall(self, calls: Sequence[Call]) -> list[tuple[bool, bytes]] | None:
        """Multicall3 ``tryAggregate(false, calls)`` as one ``eth_call`` (state changes of
        earlier calls are seen by later ones); None when there is no Multicall3 here."""
        if not self._has_code(MULTICALL3_ADDRESS):
            return None
        encoded = abi_encode(
            ["bool", "(address,bytes)[]"],
            [False, [(to_checksum_address(t), d) for t, d in calls]],
        )
        data = "0x" + (_TRY_AGGREGATE + encoded).hex()
        ok, out = self.chain.try_call(cast(TxParams, {"to": MULTICALL3_ADDRESS, "data": data}))
        if not ok:
            return None
        (results,) = abi_decode(["(bool,bytes)[]"], out)
        return [(bool(success), bytes(ret)) for success, ret in cast(Any, results)]


def _is_valid_call(digest: bytes, signature: bytes) -> str:
    return (
        "0x" + (_IS_VALID_SIGNATURE + abi_encode(["bytes32", "bytes"], [digest, signature])).hex()
    )
