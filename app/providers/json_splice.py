"""Byte-faithful pass-through bodies: the client's JSON as it arrived, with only the top-level members the
gateway owns (``model``, ``stream``, ``stream_options``...) replaced or added.

``splice(raw, original, body)`` takes the client's bytes ``raw``, the object parsed from them
(``original``) and the object the codec wants to send (``body``: a shallow copy of ``original`` with some
members set). A member whose value is the very object of ``original`` is left as it was in ``raw``, byte for
byte (whitespace, key order, number spelling, escapes); a replaced member has its value's text swapped; a new
member goes before the closing brace. When that cannot be done safely (a member removed, a key spelled with
escapes, bytes that are not one JSON object), the body is encoded afresh: the same JSON, not the same bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_DECODER = json.JSONDecoder()


@lru_cache(maxsize=64)
def _key_pattern(key: str) -> re.Pattern[str]:
    return re.compile(re.escape(json.dumps(key)) + r"\s*:\s*")


def _depth(prefix: str) -> int:
    """How deeply nested the text after ``prefix`` is (1: inside the top-level object)."""
    bare = _STRING.sub("", prefix)
    return bare.count("{") + bare.count("[") - bare.count("}") - bare.count("]")


def _value_spans(text: str, key: str) -> list[tuple[int, int]] | None:
    """The spans of the values of top-level member ``key`` in ``text``; None when it is not found there."""
    matches = list(_key_pattern(key).finditer(text))
    if len(matches) > 1:  # the same key nested somewhere too: keep the top-level ones only
        matches = [m for m in matches if _depth(text[: m.start()]) == 1]
    if not matches:
        return None
    spans = []
    for match in matches:
        try:
            _, end = _DECODER.raw_decode(text, match.end())
        except ValueError:
            return None
        spans.append((match.end(), end))
    return spans


def splice(raw: bytes | None, original: Mapping[str, Any], body: Mapping[str, Any]) -> bytes:
    """``body`` as bytes, keeping ``raw`` (the bytes ``original`` was parsed from) wherever it is unchanged."""
    if raw is None or any(key not in body for key in original):
        return orjson.dumps(body)
    changed = {k: v for k, v in body.items() if k not in original or original[k] is not v}
    if not changed:
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return orjson.dumps(body)
    edits: list[tuple[int, int, str]] = []
    added: list[str] = []
    for key, value in changed.items():
        encoded = orjson.dumps(value).decode("utf-8")
        if key not in original:
            added.append(f"{json.dumps(key)}:{encoded}")
            continue
        spans = _value_spans(text, key)
        if spans is None:
            return orjson.dumps(body)
        edits += [(start, end, encoded) for start, end in spans]
    if added:
        close = text.rstrip().rfind("}")
        if close < 0 or not text.lstrip().startswith("{"):
            return orjson.dumps(body)
        separator = "," if original else ""
        edits.append((close, close, separator + ",".join(added)))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text.encode("utf-8")
