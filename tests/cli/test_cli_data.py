"""`bazaar data ...` through the real console script against a real anvil."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentbazaar.chain.anvil import AnvilNode, free_port
from agentbazaar.config import load_config
from agentbazaar.data.cid import cid_of_path

pytestmark = pytest.mark.anvil
BAZAAR = str(Path(sys.executable).with_name("bazaar"))


@dataclass
class Env:
    home: Path
    env: dict[str, str]
    agent_id: int

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BAZAAR, *args], env=self.env, capture_output=True, text=True, timeout=300
        )

    def ok(self, *args: str) -> object:
        proc = self.run(*args)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if "--json" in args else proc.stdout

    def fails(self, *args: str) -> str:
        proc = self.run(*args)
        assert proc.returncode == 1, proc.stdout
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        return lines[0]


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("cli-data")
    home = root / "home"
    home.mkdir()
    (home / "bazaar.toml").write_text(f'[chain]\nbackend = "local"\nanvil_port = {free_port()}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")}
    env.update(BAZAAR_HOME=str(home), BAZAAR_PASSPHRASE="cli-pass", BAZAAR_SCRYPT_N="1024")
    env["COLUMNS"] = "200"
    node = AnvilNode(load_config(home, env={}))
    try:
        init = subprocess.run(
            [BAZAAR, "init", "--json"], env=env, capture_output=True, text=True, timeout=300
        )
        assert init.returncode == 0, init.stderr
        config = root / "publisher.toml"
        config.write_text('[agent]\nname = "publisher"\nwallet = "alice"\n')
        reg = subprocess.run(
            [BAZAAR, "agent", "register", str(config), "--json"],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert reg.returncode == 0, reg.stderr
        yield Env(home, env, int(json.loads(reg.stdout)["agent_id"]))
    finally:
        node.stop()


def test_publish_list_show_lineage(cli: Env, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "rows.jsonl").write_text('{"text": "hello"}\n')
    (corpus / "README").write_text("a small dataset\n")
    expected = str(cid_of_path(corpus))
    assert cli.ok("data", "cid", str(corpus), "--json")["cid"] == expected  # type: ignore[index]
    root = cli.ok(
        "data", "publish", str(corpus), "-w", "alice", "--agent", str(cli.agent_id),
        "--price", "0.5", "--licence", "open", "--royalty", "1000",
        "--contributor", "alice=7000", "--contributor", "bob=3000", "--json",
    )  # fmt: skip
    assert root["cid"] == expected and root["price"] == "500000"  # type: ignore[index]
    derived = tmp_path / "derived.jsonl"
    derived.write_text('{"text": "hello, derived"}\n')
    child = cli.ok(
        "data", "publish", str(derived), "-w", "alice", "--agent", str(cli.agent_id),
        "--price", "1", "--licence", "non-commercial", "--parent", expected, "--json",
    )  # fmt: skip
    listed = cli.ok("data", "list", "--json")
    assert [d["cid"] for d in listed] == [expected, child["cid"]]  # type: ignore[index,union-attr]
    shown = cli.ok("data", "show", expected, "--json")
    assert {c["shares"] for c in shown["contributors"]} == {7000, 3000}  # type: ignore[index]
    assert shown["licence"]["key"] == "open"  # type: ignore[index]
    lineage = cli.ok("data", "lineage", child["cid"], "--json")  # type: ignore[index]
    assert [d["id"] for d in lineage["datasets"]] == [root["id"], child["id"]]  # type: ignore[index]


def test_bad_input_is_one_line_and_changes_nothing(cli: Env, tmp_path: Path) -> None:
    data = tmp_path / "d.bin"
    data.write_bytes(os.urandom(100))
    base = [
        "data",
        "publish",
        str(data),
        "-w",
        "alice",
        "--agent",
        str(cli.agent_id),
        "--price",
        "1",
    ]
    assert "sum to 10000" in cli.fails(*base, "--licence", "open", "--contributor", "alice=5000")
    assert "above 100%" in cli.fails(*base, "--licence", "open", "--royalty", "10001")
    assert "unknown licence" in cli.fails(*base, "--licence", "all-rights-reserved")
    assert "not in the registry" in cli.fails(
        *base, "--licence", "open", "--parent", str(cid_of_path(data))
    )
    assert "no dataset citation" in cli.fails("data", "lineage", "0x" + "ab" * 32)
    listed = cli.ok("data", "list", "--json")
    assert str(cid_of_path(data)) not in {d["cid"] for d in listed}  # type: ignore[index,union-attr]
