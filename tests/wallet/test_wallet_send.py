"""``Wallet.send`` end to end on the embedded chain and on anvil, and ``reconcile`` after crashes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hexbytes import HexBytes
from wallet_helpers import deploy_usdc, mint

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.errors import PolicyViolation, TransactionReverted
from agentbazaar.tokens import NATIVE, TokenRegistry
from agentbazaar.wallet import Ledger, SpendingPolicy, Wallet, balances, reconcile

BOB = dev_account(2).address


def fresh_wallet(chain: Chain, ledger: Ledger, index: int, policy: SpendingPolicy) -> Wallet:
    wallet = Wallet("alice", dev_account(index), policy, ledger)
    chain.fund_native(wallet.address, 10**20)
    return wallet


def test_send_native_and_token_exactly_once(
    chain: Chain, make_wallet: Callable[..., Wallet], ledger: Ledger
) -> None:
    usdc, token = deploy_usdc(chain)
    policy = SpendingPolicy().with_limits(token.address or "", "USDC", 6, daily=10_000_000)
    wallet = fresh_wallet(chain, ledger, 5, policy)
    mint(chain, usdc, wallet.address, 50_000_000)
    bob_eth = chain.native_balance(BOB)

    sent = wallet.send(chain, BOB, 12_345, idempotency_key="eth-1")
    assert sent.status == "settled" and sent.block_number and not sent.replayed
    assert chain.native_balance(BOB) == bob_eth + 12_345

    paid = wallet.send(chain, BOB, 7_500_000, token, idempotency_key="usdc-1")
    again = wallet.send(chain, BOB, 7_500_000, token, idempotency_key="usdc-1")
    assert again.replayed and again.tx_hash == paid.tx_hash
    assert usdc.functions.balanceOf(BOB).call() == 7_500_000
    assert usdc.functions.balanceOf(wallet.address).call() == 42_500_000

    with pytest.raises(PolicyViolation):  # 7.5 + 3 > 10 USDC in the window
        wallet.send(chain, BOB, 3_000_000, token)
    registry = TokenRegistry([NATIVE, token])
    got = {b.token.symbol: b.units for b in balances(chain, BOB, registry)}
    assert got["USDC"] == 7_500_000 and got["ETH"] == bob_eth + 12_345
    findings = reconcile(ledger, chain)
    assert [f.outcome for f in findings] == ["ok", "ok"]


def test_reverted_simulation_signs_nothing(chain: Chain, ledger: Ledger) -> None:
    _, token = deploy_usdc(chain)
    wallet = fresh_wallet(chain, ledger, 6, SpendingPolicy())
    with pytest.raises(TransactionReverted):  # no USDC to send: gas estimation reverts
        wallet.send(chain, BOB, 1_000_000, token, idempotency_key="broke")
    (rec,) = ledger.records()
    assert rec.status == "failed" and rec.tx_hash is None and rec.raw_tx is None


def test_reconcile_finishes_signed_but_unsent(chain: Chain, ledger: Ledger) -> None:
    """The process died between signing and broadcasting: the same bytes are sent once."""
    wallet = fresh_wallet(chain, ledger, 7, SpendingPolicy())
    tx = {"to": BOB, "value": 777, "gas": 21_000, "chainId": chain.chain_id, **chain.fee_params()}
    tx["nonce"] = chain.w3.eth.get_transaction_count(wallet.address, "pending")
    with wallet.spend(
        kind="transfer",
        token=None,
        amount=777,
        counterparty=BOB,
        idempotency_key="crash-1",
        chain_id=chain.chain_id,
    ) as spend:
        spend.sign_transaction(tx)  # ... and the process dies here, before the broadcast
    before = chain.native_balance(BOB)
    (finding,) = reconcile(ledger, chain)
    assert (finding.outcome, finding.after) == ("unsent", "signed")
    (finding,) = reconcile(ledger, chain, rebroadcast=True)
    assert (finding.outcome, finding.after) == ("rebroadcast", "settled")
    assert chain.native_balance(BOB) == before + 777
    retry = wallet.send(chain, BOB, 777, idempotency_key="crash-1")
    assert retry.replayed and chain.native_balance(BOB) == before + 777


def test_reconcile_releases_a_dropped_transaction(chain: Chain, ledger: Ledger) -> None:
    wallet = fresh_wallet(chain, ledger, 8, SpendingPolicy())
    nonce = chain.w3.eth.get_transaction_count(wallet.address, "pending")
    tx = {"to": BOB, "value": 5, "gas": 21_000, "chainId": chain.chain_id, "nonce": nonce}
    tx.update(chain.fee_params())
    with wallet.spend(
        kind="transfer", token=None, amount=5, counterparty=BOB, chain_id=chain.chain_id
    ) as spend:
        spend.sign_transaction(tx)
    wallet.send(chain, BOB, 6)  # takes the same nonce: the first can never be mined
    findings = {f.outcome: f for f in reconcile(ledger, chain)}
    assert findings["dropped"].after == "failed" and findings["ok"].after == "settled"
    assert ledger.spent_in_window("alice", "native", 86_400) == 6


@pytest.mark.anvil
def test_process_killed_after_signing_is_reconciled(anvil_node: AnvilNode, tmp_path: Path) -> None:
    """A real process signs, records, and dies (os._exit) before broadcasting or settling."""
    chain = Chain.rpc(anvil_node.running_url(), backend="local")
    ledger_path = tmp_path / "crash.sqlite"
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from agentbazaar.chain import Chain
        from agentbazaar.chain.devkeys import dev_account
        from agentbazaar.wallet import Ledger, SpendingPolicy, Wallet

        chain = Chain.rpc({anvil_node.running_url()!r}, backend="local")
        wallet = Wallet("alice", dev_account(9), SpendingPolicy(), Ledger(Path({str(ledger_path)!r})))
        def die(tx_hash, raw):
            spend.record_transaction(tx_hash, raw)
            os._exit(17)
        with wallet.spend(kind="transfer", token=None, amount=4242, counterparty={BOB!r},
                          idempotency_key="killed", chain_id=chain.chain_id) as spend:
            chain.send_nowait(wallet.account_for_deploy(), {{"to": {BOB!r}, "value": 4242}},
                              on_signed=die)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=os.environ
    )
    assert proc.returncode == 17, proc.stderr
    ledger = Ledger(ledger_path)
    (rec,) = ledger.records()
    assert rec.status == "signed" and rec.raw_tx and rec.tx_hash
    assert chain.receipt(HexBytes(rec.tx_hash)) is None  # it never left the process
    before = chain.native_balance(BOB)
    (finding,) = reconcile(ledger, chain, rebroadcast=True)
    assert finding.outcome == "rebroadcast" and finding.after == "settled"
    assert chain.native_balance(BOB) == before + 4242
    wallet = Wallet("alice", dev_account(9), SpendingPolicy(), ledger)
    assert wallet.send(chain, BOB, 4242, idempotency_key="killed").replayed
    assert chain.native_balance(BOB) == before + 4242


def test_reconcile_reports_reverted_mismatched_and_missing(chain: Chain, ledger: Ledger) -> None:
    usdc, token = deploy_usdc(chain)
    wallet = fresh_wallet(chain, ledger, 12, SpendingPolicy())
    mint(chain, usdc, wallet.address, 1_000)
    nonce = chain.w3.eth.get_transaction_count(wallet.address, "pending")

    def send_signed(key: str, amount: int, moved: int, n: int) -> HexBytes:
        data = usdc.functions.transfer(BOB, moved)._encode_transaction_data()
        tx = {"to": usdc.address, "data": data, "value": 0, "gas": 90_000, "nonce": n}
        tx.update(chainId=chain.chain_id, **chain.fee_params())
        with wallet.spend(
            kind="transfer",
            token=token,
            amount=amount,
            counterparty=BOB,
            idempotency_key=key,
            chain_id=chain.chain_id,
        ) as spend:
            _, raw = spend.sign_transaction(tx)
        return chain.broadcast_raw(raw)

    send_signed("short", 500, 499, nonce)  # the ledger says 500, the chain moves 499
    reverts = send_signed("too-much", 5_000, 5_000, nonce + 1)  # the balance is only 501
    with pytest.raises(TransactionReverted):
        chain.wait_for_receipt(reverts, timeout=30)
    with wallet.spend(
        kind="transfer", token=token, amount=7, counterparty=BOB, idempotency_key="ghost"
    ) as spend:
        spend.sign_with(lambda account: None, lambda _: {"type": "test"})
        spend.settle(tx_hash="0x" + "11" * 32, block_number=1)  # a hash the chain never saw
    got = {f.idempotency_key: (f.outcome, f.after) for f in reconcile(ledger, chain)}
    assert got == {
        "short": ("mismatch", "signed"),
        "too-much": ("reverted", "failed"),
        "ghost": ("missing", "settled"),
    }
    assert usdc.functions.balanceOf(BOB).call() == 499
    assert ledger.spent_in_window("alice", token.address.lower(), 86_400) == 507  # type: ignore[union-attr]
