"""Contract-wallet payers through our facilitator, on the embedded chain, with payloads made by
the SDK's client schemes over a wallet signer: ERC-1271 (deployed wallets, 65-byte and longer
signatures) and ERC-6492 (wallets deployed by an allowed factory at settlement), for ``exact``
(EIP-3009) and ``upto`` (Permit2)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from upto_env import UptoEnv, WalletSigner, setup_chain
from x402.mechanisms.evm import constants as c

from agentbazaar.chain import Chain
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.payments.facilitator import Facilitator

OWNER = dev_account(6)


@pytest.fixture(scope="module")
def env() -> Iterator[UptoEnv]:
    yield setup_chain(Chain.embedded())


@pytest.fixture
def fac(env: UptoEnv, tmp_path: Path) -> Facilitator:
    return env.facilitator(tmp_path / "settlements.db", factories=(str(env.factory.address),))


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@pytest.mark.parametrize("tail", [b"", b"wallet-specific data"])
@pytest.mark.parametrize("scheme", ["exact", "upto"])
def test_deployed_wallet_pays_through_erc1271(
    env: UptoEnv, fac: Facilitator, scheme: str, tail: bytes
) -> None:
    wallet = env.deployed_wallet(OWNER)
    env.fund(wallet, 10_000)
    req = env.requirement(2_000, scheme=scheme)
    payload = env.pay(req, WalletSigner(wallet, OWNER, tail=tail))
    seller = env.balance(env.seller)
    assert run(fac.verify(payload, req)).is_valid
    used = req if scheme == "exact" else req.model_copy(update={"amount": "1500"})
    settled = run(fac.settle(payload, used))
    assert settled.success, settled
    assert env.balance(env.seller) == seller + int(used.amount)
    assert env.balance(wallet) == 10_000 - int(used.amount)
    assert run(fac.settle(payload, used)).transaction == settled.transaction


@pytest.mark.parametrize("scheme", ["exact", "upto"])
def test_a_stranger_cannot_sign_for_a_wallet(env: UptoEnv, fac: Facilitator, scheme: str) -> None:
    wallet = env.deployed_wallet(OWNER)
    env.fund(wallet, 10_000)
    req = env.requirement(2_000, scheme=scheme)
    payload = env.pay(req, WalletSigner(wallet, dev_account(7), tail=b"x"))
    reason = c.ERR_INVALID_SIGNATURE if scheme == "exact" else c.ERR_PERMIT2_INVALID_SIGNATURE
    result = run(fac.verify(payload, req))
    assert not result.is_valid and result.invalid_reason == reason
    assert not run(fac.settle(payload, req)).success
    assert env.balance(wallet) == 10_000


@pytest.mark.parametrize("scheme", ["exact", "upto"])
def test_counterfactual_wallet_is_deployed_then_pays(
    env: UptoEnv, fac: Facilitator, scheme: str
) -> None:
    wallet, calldata = env.counterfactual(OWNER)
    env.fund(wallet, 10_000)  # funds can reach an address before its code does
    assert not env.chain.code_at(wallet)
    signer = WalletSigner(wallet, OWNER, factory=str(env.factory.address), calldata=calldata)
    req = env.requirement(3_000, scheme=scheme)
    payload = env.pay(req, signer)
    seller = env.balance(env.seller)
    verified = run(fac.verify(payload, req))
    assert verified.is_valid, verified
    assert not env.chain.code_at(wallet)  # verifying deployed nothing
    used = req if scheme == "exact" else req.model_copy(update={"amount": "2500"})
    settled = run(fac.settle(payload, used))
    assert settled.success, settled
    assert env.chain.code_at(wallet)
    assert env.balance(env.seller) == seller + int(used.amount)
    assert run(fac.settle(payload, used)).transaction == settled.transaction


def test_factory_not_on_the_allowlist_is_refused(env: UptoEnv, tmp_path: Path) -> None:
    strict = env.facilitator(tmp_path / "strict.db")  # no factories allowed
    wallet, calldata = env.counterfactual(OWNER)
    env.fund(wallet, 10_000)
    signer = WalletSigner(wallet, OWNER, factory=str(env.factory.address), calldata=calldata)
    for scheme in ("exact", "upto"):
        req = env.requirement(1_000, scheme=scheme)
        payload = env.pay(req, signer)
        result = run(strict.verify(payload, req))
        assert not result.is_valid and result.invalid_reason == c.ERR_FACTORY_NOT_ALLOWED
        settled = run(strict.settle(payload, req))
        assert not settled.success and settled.error_reason == c.ERR_FACTORY_NOT_ALLOWED
    assert not env.chain.code_at(wallet) and env.balance(wallet) == 10_000


def test_counterfactual_wallet_without_permit2_approval_is_diagnosed(
    env: UptoEnv, fac: Facilitator
) -> None:
    wallet, calldata = env.counterfactual(OWNER, approve=False)
    env.fund(wallet, 10_000)
    signer = WalletSigner(wallet, OWNER, factory=str(env.factory.address), calldata=calldata)
    req = env.requirement(1_000)
    result = run(fac.verify(env.pay(req, signer), req))
    assert not result.is_valid and result.invalid_reason == c.ERR_PERMIT2_ALLOWANCE_REQUIRED
    assert not env.chain.code_at(wallet)
