"""The documentation's code is the tested code: every ``examples/*.py`` runs (a subprocess on
the embedded chain, no anvil) and prints what the tutorials show; every example is included in a
page of the site; the ``bazaar.toml`` reference matches the config model."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from agentbazaar.config import BazaarConfig, ChainConfig, TokenConfig, load_config
from agentbazaar.jobs.deployment import DEFAULTS as JOB_DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"
CONFIG_PAGE = DOCS / "reference" / "config.md"

# what each example must print (regular expressions, one per line, in order)
EXPECTED: dict[str, list[str]] = {
    "buy_and_sell.py": [
        r"^status: 200 \{'city': 'Oslo', 'sky': 'clear'\}$",
        r"^paid: 1000 base units of USDC, tx 0x[0-9a-f]{64}$",
        r"^ledger: x402 1000 settled$",
        r"^seller balance: 1000 base units$",
    ],
    "stream_channel.py": [
        r"^statuses: \{200: 20\}$",
        r"^ledger: 2 deposits, 20 vouchers$",
        r"^charged: 20000 claimed: 20000$",
        r"^receiver balance: 20000 base units$",
    ],
    "tools_langchain.py": [
        r"^send 0\.5: settled$",
        r"^approval asked: transfer 2000000 USDC$",
        r"^send 2: settled$",
        r"^send 7: PolicyViolation$",
        r"^friend balance: 2500000 base units$",
    ],
    "agent_ask.py": [
        r"^agent \d+ serving at http://127\.0\.0\.1:\d+$",
        r"^state: completed answer: MAKE ME LOUD$",
        r"^paid: 2000 base units to 0x[0-9a-fA-F]{40}$",
        r"^receipt: 0x[0-9a-f]{64}$",
    ],
}


def run_example(name: str, tmp_path: Path) -> list[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env["BAZAAR_HOME"] = str(tmp_path / "home")  # nothing of the user's data directory
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout.splitlines()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_and_prints_what_the_docs_show(name: str, tmp_path: Path) -> None:
    lines = run_example(name, tmp_path)
    assert len(lines) == len(EXPECTED[name]), lines
    for pattern, line in zip(EXPECTED[name], lines, strict=True):
        assert re.match(pattern, line), (pattern, line)


def test_every_example_is_run_and_included_in_the_site() -> None:
    files = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert files == sorted(EXPECTED)  # a new example gets its expected output here
    pages = "\n".join(p.read_text() for p in DOCS.rglob("*.md"))
    for name in files:
        assert f'--8<-- "examples/{name}' in pages, f"{name} is in no page of the site"


# ---- the bazaar.toml reference against the config model ---------------------------------------
def documented() -> dict[str, dict[str, tuple[str, str]]]:
    """{section: {key: (type, default)}} from the tables of the config reference."""
    sections: dict[str, dict[str, tuple[str, str]]] = {}
    section = None
    for line in CONFIG_PAGE.read_text().splitlines():
        heading = re.match(r"^## (?:`\[(.+)\]`|(Top level))$", line)
        if heading:
            section = heading.group(1) or ""
            sections[section] = {}
        elif line.startswith("## "):
            section = None
        elif section is not None and (row := re.match(r"^\| `(\w+)` \| (.+?) \| (.+?) \|", line)):
            sections[section][row.group(1)] = (row.group(2), row.group(3))
    return sections


def default_of(cell: str) -> Any:
    if cell in ("none", "required"):
        return None if cell == "none" else dataclasses.MISSING
    return tomllib.loads(f"v = {cell.strip('`')}")["v"]


def model_defaults(cls: Any, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {
        f.name: f.default
        for f in dataclasses.fields(cls)
        if f.name not in skip and f.name != "home"
    }


def test_config_reference_lists_every_key_with_its_default() -> None:
    docs = documented()
    bazaar = model_defaults(BazaarConfig)
    expected: dict[str, dict[str, Any]] = {
        "": {"default_wallet": bazaar["default_wallet"]},
        "chain": model_defaults(ChainConfig),
        "tokens.SYMBOL": model_defaults(TokenConfig, frozenset({"symbol"})),
        "stablecoin": {"name": bazaar["stablecoin_name"], "version": bazaar["stablecoin_version"]},
        "facilitator": {"url": bazaar["facilitator_url"]},
        "dex": {"factory": None, "router": None},
        "jobs": dict(JOB_DEFAULTS),
    }
    assert set(docs) == set(expected)
    for section, keys in expected.items():
        assert set(docs[section]) == set(keys), section
        for key, default in keys.items():
            assert default_of(docs[section][key][1]) == default, (section, key)
    # every top-level field of the model that the file sets is a documented section or key
    from_file = {"chain", "tokens", "stablecoin_name", "stablecoin_version", "facilitator_url"}
    assert set(bazaar) - {"extra"} == from_file | {"default_wallet"}


def test_config_reference_example_loads_as_documented(tmp_path: Path) -> None:
    text = CONFIG_PAGE.read_text()
    (example,) = re.findall(r"## Example\n.*?```toml\n(.*?)```", text, re.S)
    (tmp_path / "bazaar.toml").write_text(example)
    cfg = load_config(tmp_path, env={})
    assert cfg.default_wallet == "buyer"
    assert cfg.chain == ChainConfig("rpc", "https://sepolia.base.org", 84532, 8545, 120.0)
    assert cfg.tokens["USDC"] == TokenConfig(
        "USDC", 6, "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "USDC", "2"
    )


def test_testnet_recipe_config_loads(tmp_path: Path) -> None:
    """The recipe's bazaar.toml is the rpc backend on chain 84532 with Circle's USDC."""
    (recipe,) = re.findall(r"<<'TOML'\n(.*?)\nTOML\n", (DOCS / "testnet.md").read_text(), re.S)
    (tmp_path / "bazaar.toml").write_text(recipe)
    cfg = load_config(tmp_path, env={})
    assert (cfg.chain.backend, cfg.chain.chain_id, cfg.chain.rpc_url) == (
        "rpc",
        84532,
        "https://sepolia.base.org",
    )
    usdc = cfg.tokens["USDC"]
    assert (usdc.address, usdc.decimals, usdc.eip712_name, usdc.eip712_version) == (
        "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        6,
        "USDC",
        "2",
    )
