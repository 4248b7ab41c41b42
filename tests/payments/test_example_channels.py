"""The example service offers `exact` and `batch-settlement` on the same routes: the SDK's
batch-settlement client pays GET /quote many times over one channel (our channel engine sells),
the SDK's exact client pays the same route, and a voucher for the wrong channel gets a 402."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from eth_account import Account
from x402 import x402Client
from x402.http.clients.httpx import x402HttpxClient
from x402.mechanisms.evm.batch_settlement.client import BatchSettlementEvmScheme
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner
from x402_env import PayEnv

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import _crypto as cx
from agentbazaar.channels import install
from agentbazaar.channels.service import ChannelSeller
from agentbazaar.channels.wire import BATCH_SETTLEMENT_ADDRESS
from agentbazaar.observe import configure_logging
from agentbazaar.payments.example import create_example_app, example_channel_seller
from agentbazaar.payments.facilitator import Facilitator
from agentbazaar.testing import serve_in_thread

pytestmark = pytest.mark.anvil

QUOTE = 1_000  # 0.001 USDC in base units
CHANNEL_PAYS = 6


@dataclass
class Served:
    url: str
    seller: ChannelSeller


@pytest.fixture(scope="module")
def served(pay_env: PayEnv, facilitator: Facilitator) -> Iterator[Served]:
    install(pay_env.chain, dev_account(0))  # the batch-settlement contracts (a suite step)
    authorizer = dev_account(5)
    seller = example_channel_seller(
        pay_env.chain, pay_env.terms(), authorizer, pay_env.tmp / "example-channels.db"
    )
    app = create_example_app(pay_env.terms(), facilitator, seller)
    with serve_in_thread(app) as url:
        yield Served(url, seller)


def spend_controls(client: x402Client, env: PayEnv) -> x402Client:
    client.set_spend_controls(
        {
            "allowed_assets": [
                {
                    "network": env.chain.network,
                    "asset": str(env.token.address),
                    "max_amount_per_payment": "10000",
                }
            ]
        }
    )
    return client


def required(response: httpx.Response) -> dict[str, Any]:
    header = response.headers["PAYMENT-REQUIRED"]
    decoded: dict[str, Any] = json.loads(base64.b64decode(header))
    return decoded


async def get_quotes(url: str, client: x402Client, n: int) -> list[httpx.Response]:
    out = []
    async with x402HttpxClient(client, timeout=30) as http:
        for _ in range(n):
            out.append(await http.get(url + "/quote"))
    return out


def test_402_offers_both_schemes(pay_env: PayEnv, served: Served) -> None:
    for method, path, amount in (("GET", "/quote", QUOTE), ("POST", "/echo", 2 * QUOTE)):
        r = httpx.request(method, served.url + path)
        assert r.status_code == 402
        accepts = required(r)["accepts"]
        assert [a["scheme"] for a in accepts] == ["exact", "batch-settlement"]
        assert {int(a["amount"]) for a in accepts} == {amount}
        batch = accepts[1]
        assert batch["payTo"] == pay_env.seller
        assert batch["extra"]["receiverAuthorizer"] == dev_account(5).address
    assert httpx.get(served.url + "/free").status_code == 200


def test_sdk_channel_client_and_exact_client_pay_the_same_route(
    pay_env: PayEnv, served: Served
) -> None:
    buyer = dev_account(6)
    pay_env.fund(buyer)
    network = pay_env.chain.network
    batch_client = spend_controls(x402Client(), pay_env)
    batch_client.register(network, BatchSettlementEvmScheme(EthAccountSigner(buyer)))
    responses = asyncio.run(get_quotes(served.url, batch_client, CHANNEL_PAYS))
    assert [r.status_code for r in responses] == [200] * CHANNEL_PAYS
    assert all("quote_id" in r.json() for r in responses)
    [record] = [r for r in served.seller.engine.records() if r.config.payer == buyer.address]
    assert record.charged == CHANNEL_PAYS * QUOTE  # one channel, one charge per call
    assert pay_env.balance(buyer.address) == 100_000_000 - record.balance  # one deposit

    seller_before = pay_env.balance(pay_env.seller)
    payer_before = pay_env.balance(pay_env.payer.address)
    exact_client = spend_controls(register_exact_evm_client(x402Client(), pay_env.payer), pay_env)
    [paid] = asyncio.run(get_quotes(served.url, exact_client, 1))
    assert paid.status_code == 200, paid.text
    assert pay_env.balance(pay_env.seller) == seller_before + QUOTE
    assert pay_env.balance(pay_env.payer.address) == payer_before - QUOTE

    # the claim loop puts every acknowledged charge on chain
    asyncio.run(served.seller.claims.tick(force=True))
    state = served.seller.contracts.state(record.channel_id)
    assert state.total_claimed == CHANNEL_PAYS * QUOTE


def test_voucher_for_the_wrong_channel_is_a_402(pay_env: PayEnv, served: Served) -> None:
    buyer = dev_account(7)
    first = httpx.get(served.url + "/quote")
    requirement = required(first)["accepts"][1]
    terms = served.seller.engine.terms
    config = cx.ChannelConfig(
        payer=buyer.address,
        payer_authorizer=buyer.address,
        receiver=terms.receiver,
        receiver_authorizer=terms.receiver_authorizer,
        token=terms.token,
        withdraw_delay=terms.withdraw_delay,
        salt=os.urandom(32),
    )
    wrong = os.urandom(32)  # not the id of `config`
    domain = cx.domain_separator(terms.chain_id, BATCH_SETTLEMENT_ADDRESS)
    sig = cx.sign(bytes(buyer.key), cx.voucher_digest(domain, wrong, QUOTE))
    envelope = {
        "x402Version": 2,
        "accepted": requirement,
        "payload": {
            "type": "voucher",
            "channelConfig": config.to_wire(),
            "voucher": {
                "channelId": "0x" + wrong.hex(),
                "maxClaimableAmount": str(QUOTE),
                "signature": "0x" + sig.hex(),
            },
        },
    }
    header = base64.b64encode(json.dumps(envelope).encode()).decode()
    r = httpx.get(served.url + "/quote", headers={"PAYMENT-SIGNATURE": header})
    assert r.status_code == 402, r.text
    assert "channel" in r.json()["error"]
    assert not [x for x in served.seller.engine.records() if x.config.payer == buyer.address]
    # garbage that claims to be batch-settlement: still a 402, never a 500
    bogus = {"x402Version": 2, "accepted": requirement, "payload": {"type": "voucher"}}
    r = httpx.get(
        served.url + "/quote",
        headers={"PAYMENT-SIGNATURE": base64.b64encode(json.dumps(bogus).encode()).decode()},
    )
    assert r.status_code == 402, r.text


def test_bazaar_facilitator_supports_both_with_the_receiver_authorizer(
    pay_env: PayEnv, served: Served
) -> None:
    from agentbazaar.cli.pay import with_channels
    from agentbazaar.payments.facilitator import create_app, exact_facilitator

    gas = dev_account(2)
    fac = exact_facilitator(pay_env.chain, gas, store_path=pay_env.tmp / "cli-fac.db")
    with serve_in_thread(create_app(with_channels(fac, pay_env.chain, gas))) as url:
        supported = httpx.get(url + "/supported").json()
    kinds = {k["scheme"]: k for k in supported["kinds"]}
    assert set(kinds) == {"exact", "batch-settlement"}
    assert kinds["batch-settlement"]["network"] == pay_env.chain.network
    assert kinds["batch-settlement"]["extra"]["receiverAuthorizer"] == gas.address


def test_cli_serve_example_and_facilitator_offer_batch_settlement(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The real console scripts on a chain set up by `bazaar init` (which places the channel
    contracts): both schemes in serve-example's 402 and in the facilitator's /supported, and the
    SDK's batch-settlement client pays the CLI-served route over one channel."""
    from test_cli_pay import bazaar, start, stop

    from agentbazaar.chain import Chain
    from agentbazaar.chain.anvil import AnvilNode, free_port
    from agentbazaar.chain.compiler import default_cache_dir
    from agentbazaar.config import load_config
    from agentbazaar.suite import Suite

    home = tmp_path_factory.mktemp("example-channels-cli") / "home"
    home.mkdir(parents=True)
    (home / "bazaar.toml").write_text(f'[chain]\nbackend = "local"\nanvil_port = {free_port()}\n')
    cache = default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    (home / "artifacts").symlink_to(cache, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")}
    env.update(BAZAAR_HOME=str(home), BAZAAR_PASSPHRASE="pay-pass", BAZAAR_SCRYPT_N="1024")
    cfg = load_config(home, env={})
    node = AnvilNode(cfg)
    try:
        init = bazaar(env, "init", "--json")
        assert init.returncode == 0, init.stderr
        chain = Chain.rpc(node.running_url(), backend="local")
        suite = Suite(chain, cfg)
        buyer = dev_account(6)
        chain.transact(
            dev_account(0), suite.token_contract("USDC").functions.mint(buyer.address, 10**8)
        )
        fac, fac_url = start(env, "facilitator")
        try:
            kinds = {k["scheme"]: k for k in httpx.get(fac_url + "/supported").json()["kinds"]}
            assert set(kinds) == {"exact", "upto", "batch-settlement"}  # Permit2 is placed too
            assert kinds["batch-settlement"]["extra"]["receiverAuthorizer"].startswith("0x")
            assert kinds["upto"]["extra"]["facilitatorAddress"].startswith("0x")
        finally:
            stop(fac)
        server, url = start(env, "serve-example", "--pay-to", dev_account(3).address)
        try:
            accepts = required(httpx.get(url + "/quote"))["accepts"]
            assert [a["scheme"] for a in accepts] == ["exact", "batch-settlement"]
            metered = required(httpx.post(url + "/echo"))["accepts"]
            assert [a["scheme"] for a in metered] == ["exact", "upto", "batch-settlement"]
            client = x402Client()
            client.register(chain.network, BatchSettlementEvmScheme(EthAccountSigner(buyer)))
            client.set_spend_controls(
                {
                    "allowed_assets": [
                        {
                            "network": chain.network,
                            "asset": accepts[1]["asset"],
                            "max_amount_per_payment": "10000",
                        }
                    ]
                }
            )
            statuses = [r.status_code for r in asyncio.run(get_quotes(url, client, 3))]
            assert statuses == [200] * 3
        finally:
            stop(server)
    finally:
        node.stop()


def test_each_voucher_paid_request_is_logged_with_the_channel_and_its_running_charge(
    pay_env: PayEnv, served: Served
) -> None:
    buyer = Account.create()
    pay_env.fund(buyer)
    client = spend_controls(x402Client(), pay_env)
    client.register(pay_env.chain.network, BatchSettlementEvmScheme(EthAccountSigner(buyer)))
    out = io.StringIO()
    root = logging.getLogger("agentbazaar")
    handler = configure_logging("json", stream=out)
    try:
        responses = asyncio.run(get_quotes(served.url, client, 3))
    finally:
        root.removeHandler(handler)
        root.propagate, root.level = True, logging.NOTSET
    assert [r.status_code for r in responses] == [200] * 3
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    mine = [
        x for x in lines if x.get("event") == "x402.paid_request" and x["payer"] == buyer.address
    ]
    assert [x["charged"] for x in mine] == [QUOTE, 2 * QUOTE, 3 * QUOTE]
    assert {x["scheme"] for x in mine} == {"batch-settlement"}
    assert len({x["channel"] for x in mine}) == 1 and all(x["result"] == "served" for x in mine)
    assert mine[0]["tx"].startswith("0x") and mine[1]["tx"] == ""  # the deposit came with the first
