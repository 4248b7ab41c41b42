"""bazaar.toml: what the file holds is checked when it is read; a misspelt key is an error that
names the file, the section and the nearest known key, never a silently kept default."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentbazaar.config import KNOWN_KEYS, load_config
from agentbazaar.errors import ConfigError

FULL = """
default_wallet = "buyer"

[chain]
backend = "rpc"
rpc_url = "http://127.0.0.1:8545"
chain_id = 31337
anvil_port = 8545
receipt_timeout = 30.0

[tokens.USDC]
decimals = 6
address = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
eip712_name = "USDC"
eip712_version = "2"

[stablecoin]
name = "USD Coin"
version = "2"

[facilitator]
url = "http://127.0.0.1:4022"

[dex]
factory = "0x0000000000000000000000000000000000000001"
router = "0x0000000000000000000000000000000000000002"

[jobs]
dispute_fee = 5
"""


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> object:
    (tmp_path / "bazaar.toml").write_text(text)
    return load_config(tmp_path, env=env or {})


def test_every_known_key_loads(tmp_path: Path) -> None:
    cfg = _load(tmp_path, FULL)
    assert cfg.facilitator_url == "http://127.0.0.1:4022"  # type: ignore[attr-defined]
    assert cfg.extra["dex"]["router"].endswith("2")  # type: ignore[attr-defined]
    assert cfg.extra["jobs"] == {"dispute_fee": 5}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "where", "near"),
    [
        ('[chain]\nrcp_url = "http://x"\n', "[chain]", "rpc_url"),
        ('[chain]\nbackend = "local"\nanvil_prot = 9\n', "[chain]", "anvil_port"),
        ("[tokens.USDC]\ndecimals = 6\ndecimal = 6\n", "[tokens.USDC]", "decimals"),
        ('[stablecoin]\nversoin = "2"\n', "[stablecoin]", "version"),
        ('[facilitator]\nurl = "http://x"\nurls = "http://y"\n', "[facilitator]", "url"),
        ('[dex]\nfactroy = "0x0"\n', "[dex]", "factory"),
        ('default_walet = "a"\n', "the top level", "default_wallet"),
        ('[facilitators]\nurl = "http://x"\n', "the top level", "facilitator"),
    ],
)
def test_a_misspelt_key_is_an_error_naming_the_nearest(
    tmp_path: Path, text: str, where: str, near: str
) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    message = str(err.value)
    assert where in message and f"did you mean {near!r}" in message
    assert str(tmp_path / "bazaar.toml") in message


def test_an_unknown_key_with_no_near_match_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "[chain]\nzzz = 1\n")
    assert "did you mean" not in str(err.value)
    assert ", ".join(sorted(KNOWN_KEYS["chain"])) in str(err.value)


@pytest.mark.parametrize(
    "text",
    ['chain = "local"\n', "tokens = 3\n", "tokens = { USDC = 6 }\n", "dex = [1, 2]\n"],
)
def test_a_section_that_is_not_a_table_is_an_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="must be a table"):
        _load(tmp_path, text)


def test_env_overrides_do_not_bypass_the_check(tmp_path: Path) -> None:
    """The file is checked even when the environment sets what it misspells."""
    with pytest.raises(ConfigError, match="rcp_url"):
        _load(tmp_path, '[chain]\nrcp_url = "http://x"\n', env={"BAZAAR_RPC_URL": "http://y"})
