"""Reconcile resolves the buyer's channel rows that have no transaction of their own: a deposit
the seller never relayed (released once expired: escrow shows nothing held), and a voucher whose
response the buyer never saw (settled once the seller's claim covers it)."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
from test_buyer import PRICE, calls, seller, wallet

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import ChannelContracts
from agentbazaar.channels.buyer import ChannelBuyer
from agentbazaar.testing import LocalWorld, serve_in_thread
from agentbazaar.wallet import Ledger, SpendingPolicy, Wallet, reconcile


def requirement(url: str) -> dict[str, Any]:
    required = json.loads(base64.b64decode(httpx.get(url).headers["PAYMENT-REQUIRED"]))
    (req,) = [r for r in required["accepts"] if r["scheme"] == "batch-settlement"]
    return dict(req)


def header(req: dict[str, Any], payload: dict[str, Any]) -> str:
    envelope = {"x402Version": 2, "accepted": req, "payload": payload}
    return base64.b64encode(json.dumps(envelope).encode()).decode()


def outcomes(w: Wallet, chain: Any) -> dict[str, tuple[str, str]]:
    return {f.idempotency_key: (f.outcome, f.after) for f in reconcile(w.ledger, chain)}


def test_a_voucher_whose_answer_was_lost_settles_once_claimed(
    embedded: LocalWorld, tmp_path: Path
) -> None:
    d = embedded
    d.mint(dev_account(1).address, 10**9)
    app, engine = seller(d, tmp_path / "seller.db")
    w = wallet(tmp_path)
    with serve_in_thread(app) as url:
        buyer = ChannelBuyer(w, chain_id=d.chain.chain_id, deposit_multiplier=10)
        assert asyncio.run(calls(buyer, url + "/quote", 2)) == [200, 200]
        req = requirement(url + "/quote")
        payload = buyer.payload_for(req)  # signed; sent below, but its answer is "lost"
        lost = httpx.get(url + "/quote", headers={"PAYMENT-SIGNATURE": header(req, payload)})
        assert lost.status_code == 200
    key = f"voucher:{payload['voucher']['channelId']}:{3 * PRICE}"
    assert w.ledger.get(w.name, key).status == "signed"  # type: ignore[union-attr]
    assert outcomes(w, d.chain)[key] == ("pending", "signed")  # not claimed yet
    ChannelContracts(d.chain, dev_account(2)).claim(engine.records())
    assert outcomes(w, d.chain)[key] == ("settled", "settled")


def test_a_deposit_never_relayed_is_released_once_expired(
    embedded: LocalWorld, tmp_path: Path
) -> None:
    d = embedded
    payer = dev_account(3)
    d.mint(payer.address, 10**9)
    app, _ = seller(d, tmp_path / "seller.db")
    w = Wallet("late", payer, SpendingPolicy(), Ledger(tmp_path / "late.db"))
    with serve_in_thread(app) as url:
        req = {**requirement(url + "/quote"), "maxTimeoutSeconds": -60}  # expires at once
        buyer = ChannelBuyer(w, chain_id=d.chain.chain_id, deposit_multiplier=10)
        payload = buyer.payload_for(req)  # a deposit (new channel) and its first voucher
    assert payload["type"] == "deposit"
    token = d.usdc.address.lower()
    assert w.escrowed()[token] > 0  # the ledger counts the deposit as escrowed
    found = outcomes(w, d.chain)
    deposit_key = next(k for k in found if k.startswith("deposit:"))
    assert found[deposit_key] == ("expired", "failed")
    assert w.escrowed()[token] == 0  # nothing is held on chain, nor in the ledger
    assert d.balance(payer.address) == 10**9


def test_a_refused_live_deposit_is_cancelled_and_its_escrow_released(
    embedded: LocalWorld, tmp_path: Path
) -> None:
    """The seller refused the call that carried a deposit (still valid for an hour): the buyer
    cancels the authorization on chain (a local chain: worth its gas), so nobody can relay it
    later, and the ledger no longer counts it as escrowed."""
    from agentbazaar.wallet.reconcile import resolve_refused

    d = embedded
    payer = dev_account(7)
    d.mint(payer.address, 10**9)
    d.chain.fund_native(payer.address, 10**18)  # gas for the cancel
    app, engine = seller(d, tmp_path / "seller.db")
    w = Wallet("refused", payer, SpendingPolicy(), Ledger(tmp_path / "refused.db"))
    with serve_in_thread(app) as url:
        buyer = ChannelBuyer(w, chain_id=d.chain.chain_id, deposit_multiplier=10)
        payload = buyer.payload_for(requirement(url + "/quote"))  # the call it went with failed
    deposit = next(r for r in w.ledger.records(w.name) if r.kind == "deposit")
    assert w.escrowed()[d.usdc.address.lower()] == deposit.amount - PRICE  # less its voucher
    finding = resolve_refused(w, d.chain, deposit.idempotency_key)
    assert finding is not None and (finding.outcome, finding.after) == ("canceled", "failed")
    found = outcomes(w, d.chain)  # its voucher cannot be paid from anything now
    assert all(after == "failed" for _, after in found.values())
    assert w.escrowed()[d.usdc.address.lower()] == 0
    assert payload["type"] == "deposit" and engine.records() == []
    assert d.balance(payer.address) == 10**9
