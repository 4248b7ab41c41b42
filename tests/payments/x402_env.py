"""Shared set-up of the x402 tests: the environment, signed authorizations, encodings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from agentbazaar.chain import Chain
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.payments.server import PaymentTerms
from agentbazaar.tokens import Token

START_BALANCE = 100_000_000  # 100 USDC


@dataclass
class PayEnv:
    chain: Chain
    token: Token
    usdc: Contract
    payer: LocalAccount
    gas: LocalAccount
    seller: str
    tmp: Path

    def balance(self, address: str) -> int:
        return int(self.usdc.functions.balanceOf(address).call())

    def terms(self) -> PaymentTerms:
        return PaymentTerms(network=self.chain.network, token=self.token, pay_to=self.seller)

    def fund(self, account: LocalAccount, amount: int = START_BALANCE) -> None:
        self.chain.transact(dev_account(0), self.usdc.functions.mint(account.address, amount))


def sign_authorization(
    env: PayEnv,
    signer: LocalAccount,
    *,
    value: int,
    to: str | None = None,
    valid_after: int = 0,
    valid_before: int | None = None,
    nonce: bytes | None = None,
    payer: str | None = None,
    domain: dict[str, object] | None = None,
) -> dict[str, object]:
    """An EIP-3009 payload signed directly with eth_account (any field may be wrong on purpose;
    ``domain`` overrides fields of the token's EIP-712 domain)."""
    import os
    import time

    from eth_account.messages import encode_typed_data

    nonce = nonce if nonce is not None else os.urandom(32)
    valid_before = valid_before if valid_before is not None else int(time.time()) + 300
    to = to or env.seller
    payer = payer or signer.address
    message = encode_typed_data(
        domain_data={
            "name": "USD Coin",
            "version": "2",
            "chainId": env.chain.chain_id,
            "verifyingContract": env.token.address,
            **(domain or {}),
        },
        message_types={
            "TransferWithAuthorization": [
                {"name": "from", "type": "address"},
                {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "validAfter", "type": "uint256"},
                {"name": "validBefore", "type": "uint256"},
                {"name": "nonce", "type": "bytes32"},
            ]
        },
        message_data={
            "from": payer,
            "to": to,
            "value": value,
            "validAfter": valid_after,
            "validBefore": valid_before,
            "nonce": nonce,
        },
    )
    signature = signer.sign_message(message).signature.hex()
    return {
        "signature": "0x" + signature.removeprefix("0x"),
        "authorization": {
            "from": payer,
            "to": to,
            "value": str(value),
            "validAfter": str(valid_after),
            "validBefore": str(valid_before),
            "nonce": "0x" + nonce.hex(),
        },
    }


def requirements(env: PayEnv, amount: int = 1000) -> dict[str, object]:
    return {
        "scheme": "exact",
        "network": env.chain.network,
        "asset": env.token.address,
        "amount": str(amount),
        "payTo": env.seller,
        "maxTimeoutSeconds": 300,
        "extra": {"name": "USD Coin", "version": "2"},
    }


def payment(env: PayEnv, payload: dict[str, object], amount: int = 1000) -> dict[str, object]:
    return {"x402Version": 2, "accepted": requirements(env, amount), "payload": payload}


def header_of(payment_dict: dict[str, object]) -> str:
    import base64
    import json

    return base64.b64encode(json.dumps(payment_dict).encode()).decode()
