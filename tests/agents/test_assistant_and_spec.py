"""Pure parts: the assistant's reading of a task, agent TOML files, the demo's sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentbazaar.agents.assistant import parse_task
from agentbazaar.agents.demo import sentences
from agentbazaar.agents.spec import load_served_spec, load_spec
from agentbazaar.errors import ConfigError, InputError, IntentError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"


@pytest.mark.parametrize(
    ("text", "budget"),
    [
        ("embed these 50 sentences, spend at most 0.01 USDC", 10_000),
        ("Please embed them; budget of 2 USDC", 2_000_000),
        ("embed all of it, pay up to 0.000001 usdc", 1),
        ("embed, spend no more than 3", 3_000_000),
    ],
)
def test_task_budget_is_parsed_exactly(text: str, budget: int) -> None:
    task = parse_task(text, ["a", "b"], token_symbol="USDC", decimals=6)
    assert task.skill == "embed" and task.budget == budget and task.texts == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "texts", "error"),
    [
        ("translate these, spend at most 1 USDC", ["a"], IntentError),
        ("embed these sentences", ["a"], IntentError),
        ("embed these, spend at most 1 DAI", ["a"], IntentError),
        ("embed these, spend at most 0 USDC", ["a"], InputError),
        ("embed these, spend at most 0.0000001 USDC", ["a"], InputError),
        ("embed these, spend at most 1 USDC", [], InputError),
    ],
)
def test_unclear_tasks_are_refused(text: str, texts: list[str], error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_task(text, texts, token_symbol="USDC", decimals=6)


def test_example_agent_files_load() -> None:
    files = sorted(EXAMPLES.glob("*.toml"))
    assert len(files) >= 3
    kinds = {load_spec(f).agent.kind for f in files}
    assert kinds == {
        "embedding-provider",
        "validator",
        "assistant",
        "contract-author",
        None,
    }  # None: skills only


@pytest.mark.parametrize(
    "body",
    [
        "not toml = = =",
        '[agent]\nname = "x"\nwallet = "w"\n',  # no kind
        '[agent]\nname = "x"\nkind = "oracle"\nwallet = "w"\n',
        '[agent]\nname = "bad name!"\nkind = "validator"\nwallet = "w"\n',
        '[agent]\nname = "x"\nkind = "validator"\nwallet = "w"\n[validator]\nsample_rate = 2\n',
        '[agent]\nname = "x"\nkind = "validator"\nwallet = "w"\nsurprise = 1\n',
        'name = "x"\nwallet = "w"\n',  # the card's fields outside [agent]
        '[agent]\nname = "x"\nkind = "validator"\nwallet = "w"\n[extras]\na = 1\n',
    ],
)
def test_bad_agent_files_are_config_errors(tmp_path: Path, body: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(body)
    with pytest.raises(ConfigError):
        load_served_spec(path)
    with pytest.raises(ConfigError):
        load_served_spec(tmp_path / "missing.toml")


def test_demo_sentences_are_distinct() -> None:
    batch = sentences(50) + sentences(20, 50)
    assert len(set(batch)) == 70
