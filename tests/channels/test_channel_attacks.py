"""Hostile channel payments to a running seller: one voucher on many connections and routes at
once, a voucher signed under another chain's domain, a voucher for someone else's channel, a
deposit in a look-alike token. Each is refused (402 with a reason), charged at most once, no
funds move on chain, and the seller keeps serving the honest buyer."""

from __future__ import annotations

import asyncio
import base64
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from test_buyer import PRICE, calls, seller, wallet

from agentbazaar.chain.compiler import compile_contract
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import _crypto as cx
from agentbazaar.channels.buyer import ChannelBuyer
from agentbazaar.channels.wire import BATCH_SETTLEMENT_ADDRESS
from agentbazaar.testing import LocalWorld, serve_in_thread
from agentbazaar.testing.boa import STABLECOIN_ARGS as USDC_ARGS


def requirement(url: str) -> dict[str, Any]:
    required = json.loads(base64.b64decode(httpx.get(url).headers["PAYMENT-REQUIRED"]))
    (req,) = [r for r in required["accepts"] if r["scheme"] == "batch-settlement"]
    return dict(req)


def header(req: dict[str, Any], payload: dict[str, Any]) -> str:
    envelope = {"x402Version": 2, "accepted": req, "payload": payload}
    return base64.b64encode(json.dumps(envelope).encode()).decode()


def fire(urls: list[str], value: str) -> list[httpx.Response]:
    with ThreadPoolExecutor(len(urls)) as pool:
        return list(
            pool.map(lambda u: httpx.get(u, headers={"PAYMENT-SIGNATURE": value}, timeout=30), urls)
        )


def test_one_voucher_on_many_connections_and_routes_is_charged_once(
    embedded: LocalWorld, tmp_path: Path
) -> None:
    d = embedded
    d.mint(dev_account(1).address, 10**9)
    app, engine = seller(d, tmp_path / "seller.db")
    w = wallet(tmp_path)
    with serve_in_thread(app) as url:
        buyer = ChannelBuyer(w, chain_id=d.chain.chain_id, deposit_multiplier=10)
        assert asyncio.run(calls(buyer, url + "/quote", 1)) == [200]
        req = requirement(url + "/quote")
        value = header(req, buyer.payload_for(req))
        # /quote and /broken have the same price: one voucher, six connections, two routes
        responses = fire([url + "/quote", url + "/broken"] * 3, value)
        served = [r for r in responses if r.status_code == 200]
        assert len(served) <= 1, [r.status_code for r in responses]
        assert all(r.status_code in (200, 402, 503) for r in responses)
        (rec,) = engine.records()
        assert rec.charged == PRICE * (1 + len(served))  # at most one charge for it
        balance = d.balance(w.address)
        fresh = ChannelBuyer(w, chain_id=d.chain.chain_id, chain=d.chain)  # the honest buyer
        assert asyncio.run(calls(fresh, url + "/quote", 2)) == [200, 200]
    assert d.balance(w.address) == balance  # vouchers move no funds until claimed


def test_forged_and_wrong_domain_vouchers_are_refused(embedded: LocalWorld, tmp_path: Path) -> None:
    d = embedded
    victim, attacker = dev_account(1), dev_account(5)
    d.mint(victim.address, 10**9)
    app, engine = seller(d, tmp_path / "seller.db")
    w = wallet(tmp_path)
    with serve_in_thread(app) as url:
        buyer = ChannelBuyer(w, chain_id=d.chain.chain_id, deposit_multiplier=10)
        assert asyncio.run(calls(buyer, url + "/quote", 1)) == [200]
        req = requirement(url + "/quote")
        (rec,) = engine.records()
        channel = "0x" + rec.channel_id.hex()
        config = buyer.channel_for(req).config.to_wire()
        cases = {
            # the victim's channel, signed by the attacker
            "forged": cx.voucher_digest(buyer.domain, rec.channel_id, 2 * PRICE),
            # the victim's key, but the escrow's domain on another chain
            "other_chain": cx.voucher_digest(
                cx.domain_separator(1, BATCH_SETTLEMENT_ADDRESS), rec.channel_id, 2 * PRICE
            ),
        }
        keys = {"forged": bytes(attacker.key), "other_chain": bytes(victim.key)}
        for name, digest in cases.items():
            voucher = {
                "channelId": channel,
                "maxClaimableAmount": str(2 * PRICE),
                "signature": "0x" + cx.sign(keys[name], digest).hex(),
            }
            payload = {"type": "voucher", "channelConfig": config, "voucher": voucher}
            r = httpx.get(url + "/quote", headers={"PAYMENT-SIGNATURE": header(req, payload)})
            assert r.status_code == 402, (name, r.text)
            assert json.loads(base64.b64decode(r.headers["PAYMENT-REQUIRED"]))["error"], name
        (after,) = engine.records()
        assert after.charged == PRICE  # nothing charged for them
        assert asyncio.run(calls(buyer, url + "/quote", 1)) == [200]


def test_a_deposit_in_a_lookalike_token_is_refused(embedded: LocalWorld, tmp_path: Path) -> None:
    d = embedded
    art = compile_contract("Stablecoin")
    fake, _ = d.chain.deploy(d.deployer, art.abi, art.bytecode, *USDC_ARGS, name="fake")
    payer = dev_account(6)
    d.chain.transact(d.deployer, fake.functions.mint(payer.address, 10**9))
    d.mint(payer.address, 10**9)
    app, engine = seller(d, tmp_path / "seller.db")
    from agentbazaar.wallet import Ledger, SpendingPolicy, Wallet

    w = Wallet("fake", payer, SpendingPolicy(), Ledger(tmp_path / "fake.db"))
    with serve_in_thread(app) as url:
        req = requirement(url + "/quote")
        lookalike = {**req, "asset": fake.address}  # same name, symbol and domain, other token
        buyer = ChannelBuyer(w, chain_id=d.chain.chain_id, deposit_multiplier=10)
        payload = buyer.payload_for(lookalike)
        assert payload["type"] == "deposit"
        r = httpx.get(url + "/quote", headers={"PAYMENT-SIGNATURE": header(lookalike, payload)})
        assert r.status_code == 402, r.text
        assert engine.records() == []  # no channel opened, nothing charged
        assert int(fake.functions.balanceOf(payer.address).call()) == 10**9
        assert d.balance(payer.address) == 10**9
        honest = ChannelBuyer(w, chain_id=d.chain.chain_id, deposit_multiplier=10)
        assert asyncio.run(calls(honest, url + "/quote", 1)) == [200]
