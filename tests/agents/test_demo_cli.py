"""`bazaar demo --json`, what `make demo` runs, end to end on the embedded chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentbazaar.cli import app
from agentbazaar.cli.serve import task_rows
from agentbazaar.errors import ConfigError

pytestmark = pytest.mark.inference


def test_demo_json_report_tells_the_whole_story() -> None:
    result = CliRunner().invoke(app, ["demo", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    names = {a["name"]: a for a in report["agents"]}
    assert {"validator", "assistant", "minilm-honest"} <= set(names)
    assert all(
        a["agentId"] is not None and a["url"].startswith("http://127.0.0.1:")
        for a in report["agents"]
    )
    # the dishonest providers were tried, caught, and then avoided
    by_provider = {v["provider"]: v for v in report["validation"]}
    assert (
        by_provider["minilm-honest"]["failed"] == 0 and by_provider["minilm-honest"]["passed"] >= 3
    )
    for cheat in ("minilm-cut-price", "minilm-bargain"):
        assert by_provider[cheat]["failed"] >= 1 and by_provider[cheat]["passed"] == 0
    avoided = {o["name"] for o in report["reputation"] if o["avoided"]}
    assert avoided == {"minilm-cut-price", "minilm-bargain"}
    # the assistant's paid feedback carries the validator's verdict
    rep = {o["name"]: o for o in report["reputation"]}
    assert rep["minilm-cut-price"]["rep_avg"] == 0 and rep["minilm-bargain"]["rep_avg"] == 0
    assert rep["minilm-honest"]["rep_avg"] == 100 and rep["minilm-honest"]["rep_count"] >= 3
    paid_to = [p["to"] for p in report["payments"]]
    assert paid_to[:2] == ["minilm-cut-price", "minilm-bargain"]
    assert set(paid_to[2:]) == {"minilm-honest"}
    assert all(p["txHash"].startswith("0x") and len(p["txHash"]) == 66 for p in report["payments"])
    assert len(report["receipts"]) == len(report["payments"])
    # the last task was over budget: refused, nothing paid
    last = report["tasks"][-1]
    assert last["spent"] == "0" and last["failures"][0]["error"] == "NoProvider"
    skipped = last["failures"][0]["skipped"]  # JSON data, not a Python repr
    assert isinstance(skipped, list) and {s["provider"] for s in skipped} >= {"minilm-honest"}
    # the report on stdout lists every task with its outcome, the refused one too
    outcomes = [row[-1] for row in task_rows(report)]
    assert len(outcomes) == 3 and outcomes[0].startswith("paid ")
    assert outcomes[-1].startswith("refused: no trusted provider")
    assert all(b["reconciled"] for b in report["balances"])


def test_demo_refuses_an_unknown_chain() -> None:
    result = CliRunner().invoke(app, ["demo", "--chain", "mainnet"])
    assert result.exit_code != 0


def test_serve_refuses_bad_files_and_the_embedded_chain(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.toml"
    bad.write_text('[agent]\nname = "x"\nkind = "oracle"\nwallet = "w"\n')
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "serve", str(bad)])
    assert result.exit_code != 0 and isinstance(result.exception, ConfigError)
    good = Path(__file__).resolve().parents[2] / "examples" / "agents" / "embedder.toml"
    result = runner.invoke(
        app, ["--home", str(tmp_path / "h"), "--chain", "embedded", "serve", str(good)]
    )
    assert isinstance(result.exception, ConfigError) and "embedded" in str(result.exception)
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "receipts", "nobody"])
    assert isinstance(result.exception, ConfigError)
