"""Tool-use ids that name the model which made the call: how an agent loop keeps its model, statelessly.

A translated answer (any target but an Anthropic upstream, whose answer passes through byte for byte)
hands out its tool calls as ``toolu_sy<hex of the catalogue name>_<the call's own id>``, with characters
outside ``[A-Za-z0-9_-]`` (Anthropic's id alphabet) replaced. The client sends the id back with its
``tool_result``; ``model_of_tool_id`` reads the catalogue name out of it, on whichever replica gets the
request: no state is kept anywhere. The ids travel upstream as they are (the OpenAI codec shortens ids
longer than OpenAI accepts; a Gemini thought signature inside the id survives the prefix).
"""

from __future__ import annotations

import re

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
