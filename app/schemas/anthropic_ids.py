"""Tool-use ids that name the model which made the call: how an agent loop keeps its model, statelessly.

A translated answer hands out its tool calls as ``toolu_sy<hex of the catalogue name>_<the call's own
id>``, with characters outside ``[A-Za-z0-9_-]`` (Anthropic's id alphabet) replaced. An Anthropic upstream's
answer, which otherwise passes through byte for byte, gets the same tags on its ``tool_use`` ids when the
client routes by alias (``tag_message_ids``, ``tag_event_ids``: only the id strings change, the rest of the
bytes stay as sent); a client that names a catalogue model stays on it anyway, and gets Anthropic's ids
untouched. The client sends the id back with its ``tool_result``; ``model_of_tool_id`` reads the catalogue
name out of it, on whichever replica gets the request: no state is kept anywhere. The ids travel upstream as
they are (both blocks carry the same tagged id, valid for Anthropic; the OpenAI codec shortens ids longer
than OpenAI accepts; a Gemini thought signature inside the id survives the prefix).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

PREFIX = "toolu_sy"
_INVALID = re.compile(r"[^a-zA-Z0-9_-]")
_TAGGED = re.compile(r"toolu_sy([0-9a-f]+)_")
MAX_NAME = 256


def tag_tool_id(model: str, call_id: str) -> str:
    """``call_id`` of a call made by catalogue model ``model``, as the client sees it."""
    if call_id.startswith(PREFIX) and model_of_tool_id(call_id) is not None:
        return _INVALID.sub("_", call_id)  # already tagged (a history replayed by the gateway itself)
    return f"{PREFIX}{model.encode()[:MAX_NAME].hex()}_{_INVALID.sub('_', call_id) or 'call'}"


def model_of_tool_id(call_id: str) -> str | None:
    """The catalogue name carried by a tagged id; None for any other id."""
    match = _TAGGED.match(call_id)
    if match is None or len(match.group(1)) % 2:
        return None
    try:
        return bytes.fromhex(match.group(1)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def _tag_ids(raw: bytes, blocks: list[Any], model: str) -> bytes:
    """``raw`` with the ids of the ``tool_use`` blocks among ``blocks`` replaced by their tagged form."""
    for block in blocks:
        if isinstance(block, dict) and block.get("type") == "tool_use" and isinstance(block.get("id"), str):
            call_id = block["id"]
            raw = raw.replace(orjson.dumps(call_id), orjson.dumps(tag_tool_id(model, call_id)))
    return raw


def tag_message_ids(body: bytes, model: str) -> bytes:
    """An Anthropic ``message`` body as sent, but for its ``tool_use`` ids, tagged with ``model``."""
    if b'"tool_use"' not in body:
        return body
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    content = data.get("content") if isinstance(data, dict) else None
    return _tag_ids(body, content, model) if isinstance(content, list) else body


def tag_event_ids(event: bytes, model: str) -> bytes:
    """An Anthropic stream event (its SSE bytes) as sent, but for the id of a ``tool_use`` block it starts,
    tagged with ``model``."""
    if b'"tool_use"' not in event or b"content_block_start" not in event:
        return event
    data = b"".join(line[5:].strip() for line in event.splitlines() if line.startswith(b"data:"))
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return event
    if not isinstance(parsed, dict) or parsed.get("type") != "content_block_start":
        return event
    return _tag_ids(event, [parsed.get("content_block")], model)
