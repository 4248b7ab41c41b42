"""How tables show values: hashes shortened by one rule, addresses and shortened hashes never
cut on a narrow terminal; the demo's report names every task and its outcome."""

from __future__ import annotations

import io

from rich.console import Console

from agentbazaar.cli._common import emit_table, short_hash
from agentbazaar.cli.serve import task_rows

TX = "0x1234abcd" + "00" * 24 + "9f8e7d6c"
ADDRESS = "0x" + "Cd" * 20
COLUMNS = ["id", "wallet", "key", "kind", "amount", "to", "status", "tx"]
ROWS = [
    [1, "alice", "x402-" + "f" * 32, "x402", "0.001 USDC", ADDRESS, "settled", TX],
    [2, "bob", "k", "deposit", "1 USDC", ADDRESS, "signed", "-"],
]


def _printed(width: int, columns: list[str], rows: list[list[object]]) -> str:
    buf = io.StringIO()
    emit_table("ledger", columns, rows, out=Console(file=buf, width=width, no_color=True))
    return buf.getvalue()


def test_short_hash_keeps_both_ends_and_leaves_other_values_alone() -> None:
    assert short_hash(TX) == "0x1234abcd…9f8e7d6c"
    for value in (ADDRESS, "alice", "0x12", "-", "0x" + "zz" * 32):
        assert short_hash(value) == value


def test_tables_never_cut_hashes_or_addresses() -> None:
    for width in (200, 120, 80, 60):
        out = _printed(width, COLUMNS, ROWS)
        assert "0x1234abcd…9f8e7d6c" in out and TX not in out, out
        assert all(len(line) <= width for line in out.splitlines()), out
        if width >= 60:
            assert ADDRESS in out, out
        assert "x402-" + "f" * 32 in out.replace("\n", "").replace("│", "").replace(" ", "")


def test_a_table_that_fits_stays_a_table() -> None:
    out = _printed(80, ["name", "address", "tx"], [["alice", ADDRESS, TX]])
    header = next(line for line in out.splitlines() if "name" in line)
    assert "address" in header and "tx" in header  # one header line: columns, not records
    assert ADDRESS in out and "0x1234abcd…9f8e7d6c" in out


def test_the_demo_report_lists_every_task_with_its_outcome() -> None:
    ok, cheat = "0x" + "aa" * 32, "0x" + "bb" * 32
    report = {
        "receipts": [{"id": ok, "verdict": 100}, {"id": cheat, "verdict": 12}],
        "tasks": [
            {"task": "embed these 20 sentences, spend at most 0.01 USDC", "texts": 20,
             "embedded": 20, "spent": "3000",
             "purchases": [{"receiptId": cheat}, {"receiptId": ok}], "failures": []},
            {"task": "embed these 10 sentences, spend at most 0.000001 USDC", "texts": 10,
             "embedded": 0, "spent": "0", "purchases": [],
             "failures": [{"batch": 0, "error": "NoProvider",
                           "message": "no trusted provider of 'embed' within 1 base units"}]},
        ],
    }  # fmt: skip
    rows = task_rows(report)
    assert rows[0] == [
        "embed these 20 sentences, spend at most 0.01 USDC",
        "20/20",
        "0.003",
        "paid 2 purchases; validated: 1 passed, 1 failed",
    ]
    assert rows[1][1:] == [
        "0/10",
        "0",
        "refused: no trusted provider of 'embed' within 1 base units",
    ]


def test_json_output_is_json_data_never_a_python_repr() -> None:
    import enum
    import json
    from decimal import Decimal

    from agentbazaar.cli._common import json_text

    class Role(enum.Enum):
        BUYER = "buyer"

    data = {"tx": b"\x12\x34", "roles": {"b", "a"}, "role": Role.BUYER, "price": Decimal("1.5")}
    assert json.loads(json_text(data)) == {
        "tx": "0x1234", "roles": ["a", "b"], "role": "buyer", "price": "1.5"
    }  # fmt: skip
