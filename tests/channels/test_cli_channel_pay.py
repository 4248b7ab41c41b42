"""`bazaar channel pay URL`: streaming calls over a batch-settlement channel from the shell, on
anvil against a real seller: a deposit the first time, one voucher per call, a second run (a new
process knows nothing) picks the channel up where it was, and bad input signs nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_buyer import PRICE, seller
from typer.testing import CliRunner

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import BATCH_SETTLEMENT_ADDRESS
from agentbazaar.cli import app as cli_app
from agentbazaar.config import load_config
from agentbazaar.errors import InputError
from agentbazaar.testing import LocalWorld, serve_in_thread
from agentbazaar.wallet import KeyStore, open_wallet


@pytest.mark.anvil
def test_cli_channel_pay_streams_and_picks_up_where_it_was(
    on_anvil: LocalWorld,
    bazaar_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = on_anvil
    payer = dev_account(1).address
    d.mint(payer, 10**9)
    monkeypatch.setenv("BAZAAR_SCRYPT_N", "1024")
    rpc = d.chain.url
    cfg = load_config(bazaar_home, backend="rpc", rpc_url=rpc, env={})
    KeyStore(cfg.keystore_dir).import_key("buyer", bytes(dev_account(1).key), "test-passphrase")
    app, engine = seller(d, tmp_path / "seller.db")
    runner = CliRunner()

    def run(*args: str) -> dict[str, object]:
        argv = ["--home", str(bazaar_home), "--chain", "rpc", "--rpc", rpc, "channel", "pay"]
        result = runner.invoke(cli_app, [*argv, *args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        out: dict[str, object] = json.loads(result.stdout)
        return out

    def ledger_rows() -> list[tuple[str, int]]:
        w = open_wallet(cfg, "buyer")
        return [(r.kind, r.amount) for r in w.ledger.records(w.name)]

    with serve_in_thread(app) as url:
        quote = url + "/quote"
        first = run(quote, "-w", "buyer", "-n", "5", "--deposit-calls", "20", "--json")
        assert (first["calls"], first["ok"], first["paid"]) == (5, 5, str(5 * PRICE))
        assert first["last_status"] == 200 and json.loads(str(first["last_body"])) == {"price": 42}
        assert d.balance(BATCH_SETTLEMENT_ADDRESS) == 20 * PRICE  # escrowed, not spent
        rows = ledger_rows()
        assert [kind for kind, _ in rows].count("deposit") == 1
        assert sum(amount for kind, amount in rows if kind == "voucher") == 5 * PRICE

        # a new process: the channel comes back from the chain and the seller's proof
        second = run(quote, "-w", "buyer", "-n", "3", "--json")
        assert (second["ok"], second["paid"], second["charged"]) == (3, str(3 * PRICE), "8000")
        (rec,) = engine.records()
        assert rec.charged == 8 * PRICE  # every call paid once
        assert d.balance(BATCH_SETTLEMENT_ADDRESS) == 20 * PRICE  # no second deposit

        signed = ledger_rows()
        with pytest.raises(InputError, match="more than --max"):
            run(quote, "-w", "buyer", "--max", "0.0001", "--json")
        with pytest.raises(InputError, match="--count"):
            run(quote, "-w", "buyer", "-n", "0", "--json")
        with pytest.raises(InputError, match="not an http"):
            run("ftp://example/quote", "-w", "buyer", "--json")
        assert ledger_rows() == signed  # nothing signed for bad input
        assert engine.records()[0].charged == 8 * PRICE
