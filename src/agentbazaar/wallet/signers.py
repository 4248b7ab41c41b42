"""Signers for other libraries that still send every signature through ``Wallet.spend``.

``PolicySigner`` implements the x402 SDK's ``ClientEvmSigner`` protocol (``address`` and
``sign_typed_data(domain, types, primary_type, message) -> bytes``), so the SDK's own ``exact``
scheme can be used with a wallet without a second path to the key::

    from x402 import x402ClientSync
    from x402.mechanisms.evm.exact import register_exact_evm_client

    client = register_exact_evm_client(x402ClientSync(), PolicySigner(wallet, approve=False))

It understands the typed data that moves money and refuses anything else:

- ``TransferWithAuthorization`` / ``ReceiveWithAuthorization`` (EIP-3009): ``value`` of the
  token at ``verifyingContract`` to ``to``; idempotency key ``eip3009:<token>:<nonce>``;
- ``Permit`` (EIP-2612): an allowance of ``value`` to ``spender``, counted as a spend;
- ``PermitTransferFrom`` / ``PermitWitnessTransferFrom`` (Permit2): ``permitted.amount`` of
  ``permitted.token`` to ``witness.to`` (or the spender).

The same authorization asked for twice (same nonce) returns the stored signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hexbytes import HexBytes

from agentbazaar.errors import AmountError, PolicyViolation
from agentbazaar.wallet.wallet import Approver, Spend, Wallet


class PolicySigner:
    """An x402 ``ClientEvmSigner`` over a ``Wallet``: policy and ledger before each signature."""

    def __init__(
        self,
        wallet: Wallet,
        *,
        kind: str = "x402",
        approve: bool | Approver = False,
        memo: Mapping[str, Any] | None = None,
    ):
        self.wallet = wallet
        self.kind = kind
        self.approve = approve
        self.memo = dict(memo or {})
        self.last_spend: Spend | None = None  # the ledger entry of the latest signature

    @property
    def address(self) -> str:
        return str(self.wallet.address)

    def sign_typed_data(
        self, domain: Any, types: Mapping[str, Any], primary_type: str, message: Mapping[str, Any]
    ) -> bytes:
        domain_dict = _domain(domain)
        types_dict = {name: [_field(f) for f in fields] for name, fields in types.items()}
        token, amount, counterparty, key, kind = _spend_of(primary_type, domain_dict, message)
        with self.wallet.spend(
            kind=self.kind if kind == "payment" else kind,
            token=token,
            amount=amount,
            counterparty=counterparty,
            idempotency_key=key,
            approve=self.approve,
            memo={**self.memo, "primary_type": primary_type},
            chain_id=int(domain_dict["chainId"]) if "chainId" in domain_dict else None,
        ) as spend:
            self.last_spend = spend
            if spend.replayed and spend.payload is not None:
                return bytes(HexBytes(str(spend.payload["signature"])))
            signature = spend.sign_typed_data(
                domain_dict, types_dict, message, extra={"primary_type": primary_type}
            )
        return bytes(HexBytes(signature))


def _spend_of(
    primary_type: str, domain: Mapping[str, Any], message: Mapping[str, Any]
) -> tuple[str, int, str, str, str]:
    """(token, amount, counterparty, idempotency key, kind) of a money-moving typed message."""
    contract = str(domain.get("verifyingContract", ""))
    if primary_type in ("TransferWithAuthorization", "ReceiveWithAuthorization"):
        nonce = HexBytes(message["nonce"]).to_0x_hex()
        key = f"eip3009:{contract.lower()}:{nonce}"
        return contract, _units(message["value"]), str(message["to"]), key, "payment"
    if primary_type == "Permit":
        key = f"permit:{contract.lower()}:{message['nonce']}:{message['deadline']}"
        return contract, _units(message["value"]), str(message["spender"]), key, "authorization"
    if primary_type in ("PermitTransferFrom", "PermitWitnessTransferFrom"):
        permitted = message["permitted"]
        witness = message.get("witness") or {}
        to = witness.get("to") if isinstance(witness, Mapping) else None
        key = f"permit2:{contract.lower()}:{message['nonce']}"
        return (
            str(permitted["token"]),
            _units(permitted["amount"]),
            str(to or message["spender"]),
            key,
            "payment",
        )
    raise PolicyViolation(
        f"refusing to sign {primary_type!r}: not a payment authorization this wallet knows",
        rule="unknown_typed_data",
    )


def _units(value: Any) -> int:
    if isinstance(value, bool) or isinstance(value, float):
        raise AmountError(f"amounts are integer base units, not {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise AmountError(f"not an integer amount: {value!r}") from exc


def _domain(domain: Any) -> dict[str, Any]:
    if isinstance(domain, Mapping):
        return dict(domain)
    return {
        "name": domain.name,
        "version": domain.version,
        "chainId": domain.chain_id,
        "verifyingContract": domain.verifying_contract,
    }


def _field(field: Any) -> dict[str, str]:
    if isinstance(field, Mapping):
        return {"name": str(field["name"]), "type": str(field["type"])}
    return {"name": str(field.name), "type": str(field.type)}
