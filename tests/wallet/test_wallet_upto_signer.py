"""``PolicySigner`` under the SDK's ``upto`` client scheme: the policy and the ledger charge the
authorized maximum before the Permit2 signature; a settlement of less is recorded as what was
paid (the budget counts only that); reconcile reads Permit2's nonce bitmap."""

from __future__ import annotations

from typing import Any

import pytest
from wallet_helpers import deploy_usdc, mint
from x402.mechanisms.evm.types import UptoPermit2Payload
from x402.mechanisms.evm.upto import UptoEvmClientScheme
from x402.mechanisms.evm.upto.client import _build_upto_permit2_typed_data
from x402.schemas import PaymentRequirements

from agentbazaar.chain import Chain
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.errors import LedgerError, PolicyViolation
from agentbazaar.payments import permit2
from agentbazaar.wallet import Ledger, PolicySigner, SpendingPolicy, Wallet, reconcile

SELLER = dev_account(2).address
FACILITATOR = dev_account(3)
MAXIMUM = 2_000_000


def requirement(chain: Chain, asset: str, amount: int = MAXIMUM) -> PaymentRequirements:
    return PaymentRequirements(
        scheme="upto",
        network=chain.network,
        asset=asset,
        amount=str(amount),
        pay_to=SELLER,
        max_timeout_seconds=300,
        extra={"facilitatorAddress": FACILITATOR.address, "assetTransferMethod": "permit2"},
    )


@pytest.fixture
def setup(ledger: Ledger) -> tuple[Chain, Any, str, Wallet]:
    chain = Chain.embedded()
    usdc, token = deploy_usdc(chain)
    chain.fund_native(FACILITATOR.address, 10**20)
    permit2.install(chain, dev_account(0))
    policy = SpendingPolicy().with_limits(str(token.address), "USDC", 6, max_per_payment=3_000_000)
    wallet = Wallet("alice", dev_account(11), policy, ledger)
    chain.fund_native(wallet.address, 10**20)
    mint(chain, usdc, wallet.address, 10_000_000)
    chain.transact(
        wallet.account_for_deploy(), usdc.functions.approve(permit2.PERMIT2_ADDRESS, 2**256 - 1)
    )
    return chain, usdc, str(token.address), wallet


def _settle(chain: Chain, payload: dict[str, Any], amount: int) -> str:
    """The facilitator named in the witness settles ``amount`` through the upto proxy."""
    auth = permit2.parse_permit2(payload, upto=True)
    tx = {
        "to": permit2.UPTO_PROXY_ADDRESS,
        "data": permit2.settle_calldata(auth, amount, auth.signature),
    }
    receipt = chain.send(FACILITATOR, tx)  # type: ignore[arg-type]
    return "0x" + bytes(receipt["transactionHash"]).hex()


def test_policy_charges_the_maximum_and_the_ledger_records_what_was_paid(
    setup: tuple[Chain, Any, str, Wallet], ledger: Ledger
) -> None:
    chain, usdc, asset, wallet = setup
    scheme = UptoEvmClientScheme(PolicySigner(wallet))
    payload = scheme.create_payment_payload(requirement(chain, asset))
    (rec,) = ledger.records()
    assert (rec.kind, rec.status, rec.amount, rec.counterparty) == (
        "x402",
        "signed",
        MAXIMUM,
        SELLER,
    )
    nonce = int(payload["permit2Authorization"]["nonce"])
    assert rec.idempotency_key == f"permit2:{permit2.PERMIT2_ADDRESS.lower()}:{nonce}"
    assert ledger.spent_in_window("alice", asset.lower(), 86_400) == MAXIMUM
    with pytest.raises(PolicyViolation):  # a maximum above the policy, however little is used
        scheme.create_payment_payload(requirement(chain, asset, 3_000_001))
    assert ledger.count() == 1

    tx = _settle(chain, payload, 750_000)
    settled = wallet.settle(rec.idempotency_key, tx_hash=tx, amount=750_000)
    assert (settled.status, settled.amount, settled.memo["authorized"]) == (
        "settled",
        750_000,
        str(MAXIMUM),
    )
    assert ledger.spent_in_window("alice", asset.lower(), 86_400) == 750_000
    assert usdc.functions.balanceOf(SELLER).call() == 750_000
    assert wallet.settle(rec.idempotency_key, tx_hash=tx, amount=750_000).amount == 750_000
    with pytest.raises(LedgerError):
        wallet.settle(rec.idempotency_key, tx_hash=tx, amount=MAXIMUM + 1)
    # the same authorization asked again (a retry) gets the stored signature, not a new spend
    auth = UptoPermit2Payload.from_dict(payload).permit2_authorization
    domain, types, primary, message = _build_upto_permit2_typed_data(auth, chain.chain_id)
    again = PolicySigner(wallet).sign_typed_data(domain, types, primary, message)
    assert "0x" + again.hex() == payload["signature"] and ledger.count() == 1
    (finding,) = reconcile(ledger, chain)
    assert (finding.outcome, finding.after) == ("ok", "settled")


def test_reconcile_reads_permit2s_nonce_bitmap(
    setup: tuple[Chain, Any, str, Wallet], ledger: Ledger
) -> None:
    chain, _, asset, wallet = setup
    scheme = UptoEvmClientScheme(PolicySigner(wallet))
    used = scheme.create_payment_payload(requirement(chain, asset))
    pending = scheme.create_payment_payload(requirement(chain, asset, 1_000))
    _settle(chain, used, 5)  # settled on chain, but the wallet never heard the answer
    findings = {f.idempotency_key.rsplit(":", 1)[1]: f for f in reconcile(ledger, chain)}
    used_key = used["permit2Authorization"]["nonce"]
    pending_key = pending["permit2Authorization"]["nonce"]
    assert (findings[used_key].outcome, findings[used_key].after) == ("settled", "settled")
    assert (findings[pending_key].outcome, findings[pending_key].after) == ("pending", "signed")
