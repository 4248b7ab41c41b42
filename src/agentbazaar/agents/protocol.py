"""What an agent's HTTP service and its callers share: the A2A message and task shapes, the JSON
body rule, the structured event log, running blocking work off the event loop.

The runtime (``agents.runtime``), the buyer (``agents.hiring``), the assistant and the generation
service all speak these; they live here so that those modules import one way (none of them
imports the runtime's private helpers).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import Request

from agentbazaar import observe
from agentbazaar.errors import InputError

log = logging.getLogger("agentbazaar.agents")

MAX_BODY_BYTES = 1 << 20
VALIDATION_TAG = "embedding"  # the tag of embedding verdicts; generation ones: "generation"
CONTRACT_SKILL = "contract"  # the contract author's skill id (``agents.contracts``)
# what a message/send lacks, one wording each (every agent kind says the same)
NEEDS_PARTS = "message/send needs params.message with a list of parts"
NEEDS_DATA = "message/send needs a data part (a JSON object)"
NEEDS_TEXT = "message/send needs a text part"


def event(agent: str, name: str, **fields: Any) -> None:
    """One structured log line per thing an agent does (``agentbazaar.observe``)."""
    observe.event(log, name, agent=agent, **fields)


async def in_thread(fn: Callable[[], Any]) -> Any:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(fn)


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InputError(f"request body over {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise InputError(f"request body is not JSON: {exc}") from exc


def message_of(params: Any) -> dict[str, Any]:
    """``params.message`` of a ``message/send``, with its ``parts`` a list."""
    message = params.get("message") if isinstance(params, dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("parts"), list):
        raise InputError(NEEDS_PARTS)
    return message


def data_parts(params: Any) -> list[dict[str, Any]]:
    """The JSON objects of the message's data parts, in order (maybe none)."""
    return [
        dict(part["data"])
        for part in message_of(params)["parts"]
        if isinstance(part, dict)
        and part.get("kind") == "data"
        and isinstance(part.get("data"), dict)
    ]


def text_parts(params: Any) -> list[str]:
    """The texts of the message's text parts, in order (maybe none)."""
    return [
        str(part["text"])
        for part in message_of(params)["parts"]
        if isinstance(part, dict)
        and part.get("kind") == "text"
        and isinstance(part.get("text"), str)
    ]


def data_part(params: Any) -> dict[str, Any]:
    found = data_parts(params)
    if not found:
        raise InputError(NEEDS_DATA)
    return found[0]


def text_part(params: Any) -> str:
    found = text_parts(params)
    if not found:
        raise InputError(NEEDS_TEXT)
    return found[0]


def a2a_task(state: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "task",
        "status": {"state": state},
        "artifacts": [{"parts": [{"kind": "data", "data": data}]}],
    }
