"""Fixtures for the x402 tests: one anvil per module, our stablecoin, a facilitator on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from x402_env import PayEnv

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode, free_port
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.config import load_config
from agentbazaar.payments.facilitator import Facilitator, create_app, exact_facilitator
from agentbazaar.testing import serve_in_thread
from agentbazaar.tokens import Token


@pytest.fixture(scope="module")
def anvil_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    home = tmp_path_factory.mktemp("x402-home")
    cfg = load_config(home, env={}).with_chain(backend="local", anvil_port=free_port())
    node = AnvilNode(cfg)
    node.start()
    try:
        yield Chain.rpc(node.running_url(), backend="local")
    finally:
        node.stop()


@pytest.fixture(scope="module")
def pay_env(anvil_chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> PayEnv:
    art = compile_contract("Stablecoin")
    usdc, _ = anvil_chain.deploy(
        dev_account(0), art.abi, art.bytecode, "USD Coin", "USDC", "USD Coin", "2", name="USDC"
    )
    token = Token("USDC", 6, usdc.address, "USD Coin", "2")
    env = PayEnv(
        chain=anvil_chain,
        token=token,
        usdc=usdc,
        payer=dev_account(1),
        gas=dev_account(2),
        seller=dev_account(3).address,
        tmp=tmp_path_factory.mktemp("x402"),
    )
    env.fund(env.payer)
    return env


@pytest.fixture(scope="module")
def facilitator(pay_env: PayEnv) -> Facilitator:
    return exact_facilitator(
        pay_env.chain,
        pay_env.gas,
        store_path=pay_env.tmp / "settlements.db",
        assets=[str(pay_env.token.address)],
    )


@pytest.fixture(scope="module")
def facilitator_url(facilitator: Facilitator) -> Iterator[str]:
    with serve_in_thread(create_app(facilitator)) as url:
        yield url
