"""Paid-only feedback: proofs of payment accepted only when the payment is on the chain."""

from __future__ import annotations

import json

import pytest
from eth_account.signers.local import LocalAccount
from identity_helpers import Registries, deploy_registries, skill
from web3 import Web3

from agentbazaar.identity.cards import from_data_uri
from agentbazaar.identity.errors import (
    FeedbackError,
    FeedbackValueError,
    PaymentAlreadyUsed,
    ProofOfPaymentError,
)
from agentbazaar.identity.feedback import (
    ProofOfPayment,
    check_rating,
    claimed_payments,
    give_feedback,
    parse_feedback,
    prepare_feedback,
    registry_id,
    verify_feedback,
    verify_payment,
)


def _setup(reg: Registries) -> tuple[int, str]:
    owner = reg.new_account()
    agent_id = reg.register(owner, skills=[skill("echo", "0.01")])
    return agent_id, owner.address


def test_feedback_with_real_payment_is_proven(embedded: Registries) -> None:
    reg = embedded
    agent_id, wallet = _setup(reg)
    client = reg.new_account()
    tx = reg.pay(client, wallet, 10_000)
    prepared, fb_tx = give_feedback(
        reg.chain,
        reg.reputation,
        client,
        identity_registry=reg.identity.address,
        agent_id=agent_id,
        agent_wallet=wallet,
        value=87,
        payment_tx=tx,
        tokens={reg.usdc.address},
        tag1="quality",
    )
    receipt = reg.chain.receipt(fb_tx)
    assert receipt is not None and receipt["status"] == 1
    event = reg.reputation.events.NewFeedback().process_receipt(receipt)[0]["args"]
    # the on-chain commitment is the keccak of the exact file behind feedbackURI
    raw = from_data_uri(event["feedbackURI"])
    assert Web3.keccak(raw) == event["feedbackHash"] == prepared.hash
    assert json.loads(raw)["proofOfPayment"]["txHash"] == tx
    file, payment = verify_feedback(
        reg.chain,
        raw,
        feedback_hash=event["feedbackHash"],
        agent_id=agent_id,
        client=client.address,
        agent_wallet=wallet,
        registry=registry_id(reg.chain.chain_id, reg.identity.address),
        tokens={reg.usdc.address},
    )
    assert (payment.amount, payment.token, file.value) == (10_000, reg.usdc.address, 87)


def test_feedback_without_valid_payment_is_refused_before_sending(embedded: Registries) -> None:
    reg = embedded
    agent_id, wallet = _setup(reg)
    client, stranger = reg.new_account(), reg.new_account()
    to_stranger = reg.pay(client, stranger.address, 5)
    by_stranger = reg.pay(stranger, wallet, 5)
    unknown = "0x" + "ab" * 32
    start = reg.chain.block_number()
    for tx in (to_stranger, by_stranger, unknown):
        with pytest.raises(ProofOfPaymentError):
            give_feedback(
                reg.chain,
                reg.reputation,
                client,
                identity_registry=reg.identity.address,
                agent_id=agent_id,
                agent_wallet=wallet,
                value=100,
                payment_tx=tx,
                tokens={reg.usdc.address},
            )
    assert reg.chain.block_number() == start  # nothing was sent


def test_payment_checks_each_field(embedded: Registries) -> None:
    reg = embedded
    _agent_id, wallet = _setup(reg)
    client = reg.new_account()
    tx = reg.pay(client, wallet, 10)
    good = ProofOfPayment(
        txHash=tx, fromAddress=client.address, toAddress=wallet, chainId=reg.chain.chain_id
    )
    tokens = {reg.usdc.address}
    assert verify_payment(
        reg.chain, good, client=client.address, agent_wallet=wallet, tokens=tokens
    )
    cases = {
        "chain": good.model_copy(update={"chainId": 1}),
        "client": good.model_copy(update={"fromAddress": reg.deployer.address}),
        "wallet": good.model_copy(update={"toAddress": reg.deployer.address}),
    }
    for name, proof in cases.items():
        with pytest.raises(ProofOfPaymentError):
            verify_payment(
                reg.chain, proof, client=client.address, agent_wallet=wallet, tokens=tokens
            )
        assert name
    # a Transfer by a token the agent does not price in (another deployment) is not a payment
    other = deploy_registries(reg.chain)
    tx_other = other.pay(client, wallet, 10)
    with pytest.raises(ProofOfPaymentError, match="no transfer"):
        verify_payment(
            reg.chain,
            good.model_copy(update={"txHash": tx_other}),
            client=client.address,
            agent_wallet=wallet,
            tokens=tokens,
        )


def test_feedback_file_mismatches(embedded: Registries) -> None:
    reg = embedded
    agent_id, wallet = _setup(reg)
    client = reg.new_account()
    tx = reg.pay(client, wallet, 10)
    registry = registry_id(reg.chain.chain_id, reg.identity.address)
    prepared = prepare_feedback(
        chain_id=reg.chain.chain_id,
        identity_registry=reg.identity.address,
        agent_id=agent_id,
        client=client.address,
        agent_wallet=wallet,
        value=5,
        value_decimals=1,
        payment_tx=tx,
    )
    base = {
        "feedback_hash": prepared.hash,
        "agent_id": agent_id,
        "client": client.address,
        "agent_wallet": wallet,
        "registry": registry,
        "tokens": {reg.usdc.address},
    }
    verify_feedback(reg.chain, prepared.data, **base)  # type: ignore[arg-type]
    bad = [
        ({"feedback_hash": b"\x00" * 32}, "feedbackHash"),
        ({"agent_id": agent_id + 1}, "about agent"),
        ({"client": reg.deployer.address}, "names client"),
        ({"registry": registry_id(1, reg.identity.address)}, "about agent"),
        ({"agent_wallet": None}, "no wallet"),
    ]
    for change, message in bad:
        with pytest.raises(FeedbackError, match=message):
            verify_feedback(reg.chain, prepared.data, **{**base, **change})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw",
    [b"nope", b"{}", b'{"agentRegistry": "x", "agentId": 1}'],
)
def test_malformed_feedback_files(raw: bytes) -> None:
    with pytest.raises(FeedbackError):
        parse_feedback(raw)


def test_invalid_inputs_to_prepare() -> None:
    with pytest.raises(FeedbackError, match="txHash"):
        prepare_feedback(
            chain_id=31337,
            identity_registry="0x5FbDB2315678afecb367f032d93F642f64180aa3",
            agent_id=0,
            client="0x5FbDB2315678afecb367f032d93F642f64180aa3",
            agent_wallet="0x5FbDB2315678afecb367f032d93F642f64180aa3",
            value=1,
            value_decimals=0,
            payment_tx="0x1234",
        )
    with pytest.raises(FeedbackError, match="valueDecimals"):
        prepare_feedback(
            chain_id=31337,
            identity_registry="0x5FbDB2315678afecb367f032d93F642f64180aa3",
            agent_id=0,
            client="0x5FbDB2315678afecb367f032d93F642f64180aa3",
            agent_wallet="0x5FbDB2315678afecb367f032d93F642f64180aa3",
            value=1,
            value_decimals=19,
            payment_tx="0x" + "11" * 32,
        )


def _give(reg: Registries, client: LocalAccount, agent_id: int, wallet: str, tx: str,
          value: int, decimals: int = 0) -> str:  # fmt: skip
    _prepared, fb_tx = give_feedback(
        reg.chain,
        reg.reputation,
        client,
        identity_registry=reg.identity.address,
        agent_id=agent_id,
        agent_wallet=wallet,
        value=value,
        value_decimals=decimals,
        payment_tx=tx,
        tokens={reg.usdc.address},
    )
    return fb_tx


@pytest.mark.parametrize(
    ("value", "decimals"), [(150, 0), (-1, 0), (10_001, 2), (101 * 10**18, 18), (1, 19)]
)
def test_rating_outside_0_to_100_is_refused_before_sending(
    embedded: Registries, value: int, decimals: int
) -> None:
    """ERC-8004's rating is 0..100 at any of 0-18 decimals: 150, -1 or 100.01 is refused with
    a typed error and nothing is sent (the client's nonce and the chain do not move)."""
    reg = embedded
    agent_id, wallet = _setup(reg)
    client = reg.new_account()
    tx = reg.pay(client, wallet, 10_000)
    start, nonce = reg.chain.block_number(), reg.chain.w3.eth.get_transaction_count(client.address)
    with pytest.raises(FeedbackValueError):
        _give(reg, client, agent_id, wallet, tx, value, decimals)
    assert reg.chain.block_number() == start
    assert reg.chain.w3.eth.get_transaction_count(client.address) == nonce
    for ok, ok_decimals in ((100, 0), (0, 0), (9995, 2), (45, 1)):
        check_rating(ok, ok_decimals)  # the edges and decimals that are ratings


def test_a_payment_proves_one_feedback_not_one_per_agent(embedded: Registries) -> None:
    """Two agents with one wallet, one payment: feedback to the first, then the same proof
    replayed for the second is refused before sending (no gas burnt), with a typed reason."""
    reg = embedded
    owner = reg.new_account()
    first = reg.register(owner, name="first", skills=[skill("echo", "0.01")])
    second = reg.register(owner, name="second", skills=[skill("echo", "0.01")])
    client = reg.new_account()
    tx = reg.pay(client, owner.address, 10_000)
    _give(reg, client, first, owner.address, tx, 90)
    nonce = reg.chain.w3.eth.get_transaction_count(client.address)
    balance = reg.chain.native_balance(client.address)
    for agent_id in (second, first):
        with pytest.raises(PaymentAlreadyUsed) as info:
            _give(reg, client, agent_id, owner.address, tx, 95)
        assert info.value.fields["agent_id"] == first
    assert reg.chain.w3.eth.get_transaction_count(client.address) == nonce
    assert reg.chain.native_balance(client.address) == balance
    assert claimed_payments(reg.chain, reg.reputation, client.address) == {tx.lower(): (first, 1)}
    _give(reg, client, second, owner.address, reg.pay(client, owner.address, 5_000), 70)
