"""`bazaar chain warp` and `bazaar chain mine`: time control on the local chain, refused with one
clear line where it cannot work (chain not running, a bad duration, the embedded backend)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentbazaar.chain import Chain
from agentbazaar.testing.cli import cli_home, make_home

pytestmark = pytest.mark.anvil


def test_warp_moves_the_clock_and_mine_adds_blocks(tmp_path: Path) -> None:
    with cli_home(tmp_path / "home", init=False) as cli:
        cli.ok("chain", "up")
        url = cli.anvil.status().url
        assert url is not None
        chain = Chain.rpc(url, backend="local")
        before = chain.w3.eth.get_block("latest")

        mined = cli.json("chain", "mine", "5")
        assert mined["block"] == before["number"] + 5

        warped = cli.run("chain", "warp", "15m", "--json")
        assert warped.returncode == 0, warped.stderr
        clock = json.loads(warped.stdout)
        assert clock["block"] == mined["block"] + 1
        assert clock["timestamp"] >= mined["timestamp"] + 900
        assert clock["ahead_of_wall_clock_s"] >= 890
        assert "expire on this chain" in warped.stderr  # the payment window is said
        assert chain.w3.eth.get_block("latest")["timestamp"] == clock["timestamp"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("chain", "warp", "soon"), "not a duration"),
        (("chain", "warp", "15m"), "bazaar chain up"),
    ],
)
def test_time_control_refusals_are_one_line(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    cli = make_home(tmp_path / "home")  # nothing running
    proc = cli.run(*args)
    assert proc.returncode != 0
    assert says in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_embedded_backend_has_no_clock_to_move(tmp_path: Path) -> None:
    cli = make_home(tmp_path / "home")
    (cli.home / "bazaar.toml").write_text('[chain]\nbackend = "embedded"\n')
    proc = cli.run("chain", "warp", "1h")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error:") and "local anvil chain" in proc.stderr
