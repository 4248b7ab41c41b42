"""Reconcile resolves x402 payments that have no transaction of their own: used on chain after all
(settled, with the transaction that used it), expired unused (released), cancelled on chain
(released); and a refused one is cancelled when that is worth its gas."""

from __future__ import annotations

import pytest
from eth_account.messages import encode_typed_data
from hexbytes import HexBytes
from wallet_helpers import deploy_usdc, mint
from web3.contract import Contract
from x402.schemas import PaymentPayload, PaymentRequired, PaymentRequirements

from agentbazaar.chain import Chain
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.errors import TransactionReverted
from agentbazaar.payments.payers import PaymentIntent, WalletPayer
from agentbazaar.tokens import Token
from agentbazaar.wallet import Ledger, SpendingPolicy, SpendRecord, Wallet, reconcile
from agentbazaar.wallet.authorizations import (
    CANCEL_IF_LIVE_FOR,
    CANCEL_TYPES,
    TOKEN_ABI,
    authorization_of,
    worth_cancelling,
)
from agentbazaar.wallet.reconcile import resolve_refused

BOB = dev_account(2).address


def x402_spend(
    wallet: Wallet, chain: Chain, token: Token, key: str, *, timeout: int = 300
) -> tuple[SpendRecord, PaymentPayload]:
    """What `bazaar pay` signs for a 402 (WalletPayer: policy, ledger, the SDK's signer)."""
    req = PaymentRequirements(
        scheme="exact",
        network=chain.network,
        asset=str(token.address),
        amount="1500",
        pay_to=BOB,
        max_timeout_seconds=timeout,  # the SDK signs validBefore = now + this
        extra={"name": "USD Coin", "version": "2"},
    )
    required = PaymentRequired(x402_version=2, accepts=[req])
    intent = PaymentIntent("http://seller/quote", chain.network, req.asset, 1500, BOB, key)
    done = WalletPayer(wallet, tokens={req.asset: token}).authorize(intent, required)
    record = wallet.ledger.get(wallet.name, key)
    assert record is not None and record.status == "signed"
    return record, done.payload


def submit(chain: Chain, usdc: Contract, payload: PaymentPayload) -> str:
    """Anyone holding the authorization settles it (here: a relayer)."""
    auth = payload.payload["authorization"]
    receipt = chain.transact(
        dev_account(0),
        usdc.functions.transferWithAuthorization(
            auth["from"],
            auth["to"],
            int(auth["value"]),
            int(auth["validAfter"]),
            int(auth["validBefore"]),
            HexBytes(auth["nonce"]),
            HexBytes(payload.payload["signature"]),
        ),
    )
    return HexBytes(receipt["transactionHash"]).to_0x_hex()


@pytest.fixture
def setup(ledger: Ledger) -> tuple[Chain, Contract, Token, Wallet]:
    chain = Chain.embedded()
    usdc, token = deploy_usdc(chain)
    wallet = Wallet("alice", dev_account(11), SpendingPolicy(), ledger)
    mint(chain, usdc, wallet.address, 10_000)
    return chain, usdc, token, wallet


def test_a_refused_payment_settled_later_is_found_with_its_transaction(
    setup: tuple[Chain, Contract, Token, Wallet],
) -> None:
    chain, usdc, token, wallet = setup
    _, payload = x402_spend(wallet, chain, token, "later")
    tx = submit(chain, usdc, payload)
    (finding,) = reconcile(wallet.ledger, chain)
    assert (finding.outcome, finding.after, finding.tx_hash) == ("settled", "settled", tx)
    record = wallet.ledger.get("alice", "later")
    assert record is not None and record.tx_hash == tx and record.block_number
    assert reconcile(wallet.ledger, chain)[0].outcome == "ok"


def test_an_expired_unused_authorization_is_released(
    setup: tuple[Chain, Contract, Token, Wallet],
) -> None:
    chain, _, token, wallet = setup
    record, _ = x402_spend(wallet, chain, token, "old", timeout=-60)  # validBefore in the past
    assert wallet.ledger.spent_in_window("alice", record.token, 86_400) == 1500
    (finding,) = reconcile(wallet.ledger, chain)
    assert (finding.outcome, finding.after) == ("expired", "failed")
    assert wallet.ledger.spent_in_window("alice", record.token, 86_400) == 0


def test_a_live_refused_authorization_is_cancelled_and_cannot_be_used(
    setup: tuple[Chain, Contract, Token, Wallet],
) -> None:
    chain, usdc, token, wallet = setup
    _, payload = x402_spend(wallet, chain, token, "refused")
    assert reconcile(wallet.ledger, chain)[0].outcome == "pending"  # live: not released yet
    broke = resolve_refused(wallet, chain, "refused")  # no ETH for the cancel's gas
    assert broke is not None and (broke.outcome, broke.after) == ("pending", "signed")
    assert "could not cancel" in broke.detail and "until" in broke.detail
    chain.fund_native(wallet.address, 10**18)
    finding = resolve_refused(wallet, chain, "refused")
    assert finding is not None and (finding.outcome, finding.after) == ("canceled", "failed")
    before = usdc.functions.balanceOf(BOB).call()
    with pytest.raises(TransactionReverted):
        submit(chain, usdc, payload)  # whoever held it can no longer settle it
    assert usdc.functions.balanceOf(BOB).call() == before
    assert wallet.ledger.spent_in_window("alice", token.address.lower(), 86_400) == 0  # type: ignore[union-attr]
    assert resolve_refused(wallet, chain, "refused") is None  # nothing left to resolve


def test_a_cancel_the_ledger_missed_is_found(
    setup: tuple[Chain, Contract, Token, Wallet],
) -> None:
    """The cancel was sent but the process died before writing it down."""
    chain, usdc, token, wallet = setup
    record, _ = x402_spend(wallet, chain, token, "crash")
    signed = authorization_of(record.payload)
    assert signed is not None and signed.domain is not None
    sig = dev_account(11).sign_message(
        encode_typed_data(
            domain_data=signed.domain,
            message_types=CANCEL_TYPES,
            message_data={"authorizer": wallet.address, "nonce": signed.nonce},
        )
    )
    token_contract = chain.contract(str(token.address), TOKEN_ABI)
    chain.transact(  # signed by the wallet's key, sent by anyone
        dev_account(0),
        token_contract.functions.cancelAuthorization(
            wallet.address,
            signed.nonce,
            sig.v,
            sig.r.to_bytes(32, "big"),
            sig.s.to_bytes(32, "big"),
        ),
    )
    (finding,) = reconcile(wallet.ledger, chain)
    assert (finding.outcome, finding.after) == ("canceled", "failed")
    assert usdc.functions.balanceOf(BOB).call() == 0


def test_when_cancelling_is_worth_its_gas() -> None:
    now = 1_000_000
    assert worth_cancelling(is_dev=True, valid_before=now + 60, now=now)
    assert not worth_cancelling(is_dev=False, valid_before=now + 300, now=now)  # soon expired
    assert worth_cancelling(is_dev=False, valid_before=now + CANCEL_IF_LIVE_FOR + 1, now=now)
    assert not worth_cancelling(is_dev=True, valid_before=now, now=now)  # already dead
