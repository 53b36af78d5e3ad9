"""Small pure helpers shared by the vendor codecs."""

from __future__ import annotations

import json
from typing import Any


def tool_arguments(arguments: str) -> dict[str, Any]:
    """Parse a tool call's JSON arguments leniently (models sometimes emit invalid JSON)."""
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"value": value}
