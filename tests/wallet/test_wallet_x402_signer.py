"""``PolicySigner`` under the real x402 SDK ``exact`` scheme: EIP-3009 authorizations pass the policy
and the ledger, settle on our Stablecoin, and reconcile against ``authorizationState``."""

from __future__ import annotations

import os

import pytest
from hexbytes import HexBytes
from wallet_helpers import deploy_usdc, mint
from x402.mechanisms.evm.exact.client import ExactEvmScheme
from x402.schemas import PaymentRequirements

from agentbazaar.chain import Chain
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.errors import ApprovalRequired, PolicyViolation
from agentbazaar.wallet import Ledger, PolicySigner, SpendingPolicy, Wallet, reconcile

BOB = dev_account(2).address


def requirement(chain: Chain, asset: str, amount: int) -> PaymentRequirements:
    return PaymentRequirements(
        scheme="exact",
        network=f"eip155:{chain.chain_id}",
        asset=asset,
        amount=str(amount),
        pay_to=BOB,
        max_timeout_seconds=300,
        extra={"name": "USD Coin", "version": "2"},
    )


def test_sdk_signs_only_through_the_policy(ledger: Ledger) -> None:
    chain = Chain.embedded()
    usdc, token = deploy_usdc(chain)
    asset = str(token.address)
    policy = SpendingPolicy().with_limits(
        asset, "USDC", 6, max_per_payment=5_000_000, approve_above=2_000_000
    )
    wallet = Wallet("alice", dev_account(11), policy, ledger)
    mint(chain, usdc, wallet.address, 10_000_000)
    scheme = ExactEvmScheme(PolicySigner(wallet))

    payload = scheme.create_payment_payload(requirement(chain, asset, 1_500_000))
    (rec,) = ledger.records()
    auth = payload["authorization"]
    assert (rec.kind, rec.status, rec.amount, rec.counterparty) == (
        "x402",
        "signed",
        1_500_000,
        BOB,
    )
    assert rec.payload is not None and rec.payload["signature"] == payload["signature"]
    with pytest.raises(PolicyViolation):
        scheme.create_payment_payload(requirement(chain, asset, 6_000_000))
    with pytest.raises(ApprovalRequired):
        scheme.create_payment_payload(requirement(chain, asset, 3_000_000))
    assert ledger.count() == 1

    chain.transact(
        dev_account(0),  # any relayer submits the authorization
        usdc.functions.transferWithAuthorization(
            auth["from"],
            auth["to"],
            int(auth["value"]),
            int(auth["validAfter"]),
            int(auth["validBefore"]),
            HexBytes(auth["nonce"]),
            HexBytes(payload["signature"]),
        ),
    )
    assert usdc.functions.balanceOf(BOB).call() == 1_500_000
    (finding,) = reconcile(ledger, chain)
    assert (finding.outcome, finding.after) == ("settled", "settled")


def test_same_authorization_twice_returns_the_stored_signature(ledger: Ledger) -> None:
    chain = Chain.embedded()
    _, token = deploy_usdc(chain)
    wallet = Wallet("alice", dev_account(11), SpendingPolicy(), ledger)
    signer = PolicySigner(wallet)
    domain = {
        "name": "USD Coin",
        "version": "2",
        "chainId": chain.chain_id,
        "verifyingContract": token.address,
    }
    types = {
        "TransferWithAuthorization": [
            {"name": "from", "type": "address"},
            {"name": "to", "type": "address"},
            {"name": "value", "type": "uint256"},
            {"name": "validAfter", "type": "uint256"},
            {"name": "validBefore", "type": "uint256"},
            {"name": "nonce", "type": "bytes32"},
        ]
    }
    message = {
        "from": wallet.address,
        "to": BOB,
        "value": 700,
        "validAfter": 0,
        "validBefore": 1,  # already expired: it can never be used
        "nonce": os.urandom(32),
    }
    first = signer.sign_typed_data(domain, types, "TransferWithAuthorization", message)
    again = signer.sign_typed_data(domain, types, "TransferWithAuthorization", message)
    assert first == again and len(first) == 65 and ledger.count() == 1
    with pytest.raises(PolicyViolation):
        signer.sign_typed_data(
            domain, {"Mail": [{"name": "x", "type": "uint256"}]}, "Mail", {"x": 1}
        )
    (finding,) = reconcile(ledger, chain)
    assert (finding.outcome, finding.after) == ("expired", "failed")
    assert ledger.spent_in_window("alice", str(token.address).lower(), 86_400) == 0
