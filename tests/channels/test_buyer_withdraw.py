"""The payer's timed withdrawal, without the seller's help: the buyer starts it on chain, the
seller's running claim loop claims its charges before the delay ends, the buyer finalizes after
the delay and gets back exactly what was not charged; the wallet's escrow is freed and
everything reconciles to the unit. Bad inputs raise typed errors and send nothing."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from test_buyer import PRICE, seller, wallet
from typer.testing import CliRunner

from agentbazaar.chain import Chain
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import BATCH_SETTLEMENT_ADDRESS, ChannelTerms
from agentbazaar.channels.buyer import ChannelBuyer, WithdrawalRejected
from agentbazaar.channels.errors import ChannelError, ChannelInputError
from agentbazaar.channels.onchain import ChannelContracts, transferred
from agentbazaar.channels.service import ChannelSeller
from agentbazaar.channels.settlement import ClaimPolicy
from agentbazaar.cli import app as cli_app
from agentbazaar.config import load_config
from agentbazaar.errors import AmountError, InputError, PolicyViolation
from agentbazaar.testing import LocalWorld, serve_in_thread
from agentbazaar.wallet import KeyStore, SpendingPolicy, TokenLimits, open_wallet

DEPOSIT = 20 * PRICE  # deposit_multiplier 20


async def paid_calls(buyer: ChannelBuyer, url: str, n: int) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as http:
        return [(await buyer.get(http, url)).status_code for _ in range(n)]


def wait_until(check: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def seller_terms_req(d: LocalWorld) -> dict[str, object]:
    """The part of the test seller's requirement that names a channel (payTo, asset, extra)."""
    extra = {"receiverAuthorizer": dev_account(2).address, "withdrawDelay": 900}
    return {"payTo": dev_account(4).address, "asset": d.token, "extra": extra}


def nonce(d: LocalWorld, who: str) -> int:
    return int(d.chain.w3.eth.get_transaction_count(who))  # type: ignore[arg-type]


@pytest.mark.anvil
def test_withdrawal_mid_stream_seller_claims_first_buyer_gets_the_rest(
    on_own_anvil: LocalWorld, tmp_path: Path
) -> None:
    d = on_own_anvil  # moves the chain clock
    payer, token = dev_account(1).address, d.token.lower()
    start, n = 10**9, 7
    charged = n * PRICE
    d.mint(payer, start)
    terms = ChannelTerms(
        d.chain.chain_id, dev_account(4).address, dev_account(2).address, d.usdc.address
    )
    seller_svc = ChannelSeller(  # claims only when urgent: no threshold or period reached here
        Chain.rpc(d.chain.url or "", backend="local"),
        dev_account(2),
        terms,
        tmp_path / "seller.db",
        {"GET /quote": PRICE},
        policy=ClaimPolicy(threshold=10**12, period_s=10**6),
        claim_interval_s=0.05,
    )
    app = FastAPI(lifespan=seller_svc.lifespan)
    app.middleware("http")(seller_svc.paywall)

    @app.get("/quote")
    async def quote() -> dict[str, int]:
        return {"price": 42}

    policy = SpendingPolicy(tokens={token: TokenLimits("USDC", 6, max_escrow=DEPOSIT)})
    w = wallet(tmp_path, policy)
    buyer = ChannelBuyer(w, chain_id=d.chain.chain_id, chain=d.chain, deposit_multiplier=20)
    contracts = ChannelContracts(d.chain, dev_account(2))
    with serve_in_thread(app) as url:
        assert asyncio.run(paid_calls(buyer, url + "/quote", n)) == [200] * n
        [channel] = buyer.channels.values()
        cid = channel.channel_id
        assert contracts.state(cid).total_claimed == 0  # nothing claimed yet
        assert w.escrowed()[token] == DEPOSIT - charged

        pending = asyncio.run(buyer.initiate_withdraw(channel))
        assert (pending.channel_id, pending.amount) == (cid, DEPOSIT - charged)
        wait_until(lambda: contracts.state(cid).total_claimed == charged, "the seller's claim")
        wait_until(lambda: d.balance(terms.receiver) == charged, "the seller's settle")
        assert d.chain.timestamp() < pending.finalize_after  # claimed before the delay ended

        with pytest.raises(WithdrawalRejected) as early:
            asyncio.run(buyer.finalize_withdraw(cid))
        assert early.value.reason == "WithdrawDelayNotElapsed"

        provider = d.chain.w3.provider
        provider.make_request("evm_increaseTime", [terms.withdraw_delay])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        back = asyncio.run(buyer.finalize_withdraw("0x" + cid.hex()))
        assert back == DEPOSIT - charged

        # on chain, to the unit
        assert d.balance(payer) == start - charged
        assert d.balance(terms.receiver) == charged
        assert d.balance(BATCH_SETTLEMENT_ADDRESS) == 0
        state = contracts.state(cid)
        assert (state.balance, state.total_claimed, state.withdraw_requested_at) == (
            charged,
            charged,
            0,
        )
        assert contracts.receiver_totals(terms.receiver, d.token) == (charged, charged)
        # in the wallet's ledger
        live = [r for r in w.ledger.records(w.name) if r.status != "failed"]
        assert sum(r.amount for r in live if r.kind == "deposit") == DEPOSIT
        assert sum(r.amount for r in live if r.kind == "voucher") == charged
        [refund] = [r for r in live if r.kind == "refund"]
        assert (refund.amount, refund.status) == (DEPOSIT - charged, "settled")
        assert refund.tx_hash is not None and d.chain.receipt(refund.tx_hash) is not None
        assert w.escrowed()[token] == 0
        assert channel.balance == charged

        # the escrow cap is free again: the next call deposits a whole DEPOSIT once more
        assert asyncio.run(paid_calls(buyer, url + "/quote", 1)) == [200]
        assert w.escrowed()[token] == DEPOSIT - PRICE
    # the seller claims the last charge on shutdown
    assert d.balance(terms.receiver) == charged + PRICE
    assert d.balance(payer) == start - charged - DEPOSIT


def test_bad_withdrawals_raise_typed_errors_and_send_nothing(
    embedded: LocalWorld, tmp_path: Path
) -> None:
    d = embedded
    payer, token = dev_account(1).address, d.token.lower()
    d.mint(payer, 10**9)
    app, _ = seller(d, tmp_path / "seller.db")
    w = wallet(tmp_path)
    buyer = ChannelBuyer(w, chain_id=d.chain.chain_id, chain=d.chain, deposit_multiplier=20)
    with serve_in_thread(app) as url:
        assert asyncio.run(paid_calls(buyer, url + "/quote", 3)) == [200] * 3
    [channel] = buyer.channels.values()
    # the same seller's terms under another salt: a channel this buyer knows but never funded
    other = ChannelBuyer(w, chain_id=d.chain.chain_id, chain=d.chain, salt=os.urandom(32))
    empty = other.channel_for(seller_terms_req(d))
    assert empty.channel_id != channel.channel_id
    no_chain = ChannelBuyer(w, chain_id=d.chain.chain_id)
    no_chain.channels = dict(buyer.channels)

    def refused(call: object, error: type[Exception], reason: str | None = None) -> None:
        sent = nonce(d, payer)
        ledger = [(r.id, r.status) for r in w.ledger.records(w.name)]
        with pytest.raises(error) as info:
            asyncio.run(call)  # type: ignore[arg-type]
        if reason is not None:
            assert isinstance(info.value, WithdrawalRejected) and info.value.reason == reason
        assert nonce(d, payer) == sent  # nothing signed or sent
        assert [(r.id, r.status) for r in w.ledger.records(w.name)] == ledger

    refused(buyer.finalize_withdraw(channel), WithdrawalRejected, "WithdrawalNotPending")
    refused(buyer.initiate_withdraw(os.urandom(32)), ChannelInputError)
    refused(buyer.initiate_withdraw("0x1234"), ChannelInputError)
    refused(buyer.initiate_withdraw(12345), ChannelInputError)  # type: ignore[arg-type]
    refused(other.initiate_withdraw(empty), WithdrawalRejected, "NothingToWithdraw")
    refused(other.finalize_withdraw(empty), WithdrawalRejected, "WithdrawalNotPending")
    too_much = "WithdrawAmountExceedsAvailable"
    refused(buyer.initiate_withdraw(channel, DEPOSIT + 1), WithdrawalRejected, too_much)
    # within the balance, but 3 x PRICE of it is signed over in vouchers the seller holds
    refused(buyer.initiate_withdraw(channel, DEPOSIT - 3 * PRICE + 1), WithdrawalRejected, too_much)
    refused(buyer.initiate_withdraw(channel, 0), AmountError)
    refused(buyer.initiate_withdraw(channel, -5), AmountError)
    refused(buyer.initiate_withdraw(channel, 1.5), AmountError)  # type: ignore[arg-type]
    refused(buyer.initiate_withdraw(channel, True), AmountError)
    refused(no_chain.initiate_withdraw(channel), ChannelError)
    assert d.balance(payer) == 10**9 - DEPOSIT

    escrowed = w.escrowed()[token]
    pending = asyncio.run(buyer.initiate_withdraw(channel, 2 * PRICE))
    assert pending.amount == 2 * PRICE
    assert pending.finalize_after == d.chain.timestamp() + 900
    refused(buyer.finalize_withdraw(channel), WithdrawalRejected, "WithdrawDelayNotElapsed")
    refused(buyer.initiate_withdraw(channel), WithdrawalRejected, "WithdrawalAlreadyPending")
    assert w.escrowed()[token] == escrowed  # nothing came back yet


def test_the_wallet_signs_only_release_calls_outside_a_spend(
    embedded: LocalWorld, tmp_path: Path
) -> None:
    d = embedded
    payer = dev_account(1).address
    d.mint(payer, 10**6)
    w = wallet(tmp_path)
    sent = nonce(d, payer)
    with pytest.raises(PolicyViolation) as info:
        w.send_release(d.chain, d.usdc.functions.transfer(dev_account(4).address, 10**6))
    assert info.value.fields["rule"] == "release_call"
    assert nonce(d, payer) == sent and d.balance(payer) == 10**6


def test_a_withdrawal_finalized_before_a_crash_is_recorded_once_on_recovery(
    embedded: LocalWorld, tmp_path: Path
) -> None:
    d = embedded
    payer, token = dev_account(1).address, d.token.lower()
    d.mint(payer, 10**9)
    app, _ = seller(d, tmp_path / "seller.db")
    w = wallet(tmp_path)
    buyer = ChannelBuyer(w, chain_id=d.chain.chain_id, chain=d.chain, deposit_multiplier=20)
    with serve_in_thread(app) as url:
        assert asyncio.run(paid_calls(buyer, url + "/quote", 3)) == [200] * 3
    [channel] = buyer.channels.values()
    pending = asyncio.run(buyer.initiate_withdraw(channel))
    assert pending.amount == DEPOSIT - 3 * PRICE  # what was not charged
    tester = d.chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    tester.time_travel(pending.finalize_after + 1)
    # the process dies after the finalize transaction, before its ledger write
    escrow = ChannelContracts(d.chain, dev_account(2)).escrow
    receipt = w.send_release(d.chain, escrow.functions.finalizeWithdraw(channel.config.as_tuple()))
    back = DEPOSIT - 3 * PRICE
    assert transferred(receipt, d.token, BATCH_SETTLEMENT_ADDRESS, payer) == back
    assert transferred(receipt, d.token, payer, BATCH_SETTLEMENT_ADDRESS) == 0
    assert d.balance(payer) == 10**9 - 3 * PRICE
    assert w.escrowed()[token] == DEPOSIT - 3 * PRICE  # the ledger does not know yet
    fresh = ChannelBuyer(w, chain_id=d.chain.chain_id, chain=d.chain, deposit_multiplier=20)
    fresh.channel_for(seller_terms_req(d))  # a new process: the channel from the seller's terms
    assert asyncio.run(fresh.recover_withdrawals(channel.channel_id)) == DEPOSIT - 3 * PRICE
    assert asyncio.run(fresh.recover_withdrawals(channel.channel_id)) == 0  # once
    assert w.escrowed()[token] == 0
    [refund] = [r for r in w.ledger.records(w.name) if r.kind == "refund"]
    assert refund.amount == DEPOSIT - 3 * PRICE
    with pytest.raises(WithdrawalRejected) as info:
        asyncio.run(fresh.finalize_withdraw(channel.channel_id))
    assert info.value.reason == "WithdrawalNotPending"


@pytest.mark.anvil
def test_cli_channel_withdraw_and_finalize(
    on_own_anvil: LocalWorld,
    bazaar_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`bazaar channel withdraw URL` then, after the delay, `bazaar channel finalize URL`."""
    d = on_own_anvil  # moves the chain clock
    payer, token = dev_account(1).address, d.token.lower()
    d.mint(payer, 10**9)
    monkeypatch.setenv("BAZAAR_SCRYPT_N", "1024")
    rpc = d.chain.url
    cfg = load_config(bazaar_home, backend="rpc", rpc_url=rpc, env={})
    KeyStore(cfg.keystore_dir).import_key("buyer", bytes(dev_account(1).key), "test-passphrase")
    w = open_wallet(cfg, "buyer")
    buyer = ChannelBuyer(w, chain_id=d.chain.chain_id, chain=d.chain, deposit_multiplier=20)
    app, _ = seller(d, tmp_path / "seller.db")
    runner = CliRunner()

    def run(*args: str) -> dict[str, object]:
        argv = ["--home", str(bazaar_home), "--chain", "rpc", "--rpc", rpc, "channel", *args]
        result = runner.invoke(cli_app, argv)
        if result.exception is not None:
            raise result.exception
        out: dict[str, object] = json.loads(result.stdout)
        return out

    with serve_in_thread(app) as url:
        quote = url + "/quote"
        assert asyncio.run(paid_calls(buyer, quote, 4)) == [200] * 4
        cid = "0x" + next(iter(buyer.channels)).hex()
        sent = nonce(d, payer)
        with pytest.raises(WithdrawalRejected, match="no withdrawal is pending"):
            run("finalize", quote, "-w", "buyer", "--json")
        with pytest.raises(InputError):
            run("withdraw", "ftp://example", "-w", "buyer", "--json")
        assert nonce(d, payer) == sent
        started = run("withdraw", quote, "-w", "buyer", "--json")
        assert (started["channel"], started["amount"]) == (cid, str(DEPOSIT - 4 * PRICE))
        with pytest.raises(WithdrawalRejected, match="delay"):
            run("finalize", quote, "-w", "buyer", "--json")
        provider = d.chain.w3.provider
        provider.make_request("evm_increaseTime", [900])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        assert run("finalize", quote, "-w", "buyer", "--json") == {
            "channel": cid,
            "amount": str(DEPOSIT - 4 * PRICE),
        }
    # the seller never claimed here: the buyer took back only what it was not charged
    assert d.balance(payer) == 10**9 - 4 * PRICE
    assert d.balance(BATCH_SETTLEMENT_ADDRESS) == 4 * PRICE  # still claimable by the seller
    assert w.escrowed()[token] == 0
