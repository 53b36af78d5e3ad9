"""Pipeline prompt templates: ``{name}`` placeholders, ``{{`` and ``}}`` for literal braces.

Only plain identifiers are allowed as placeholders (no attribute access, indexing or format specs), so a
template can never reach into an object; values are substituted verbatim, never re-interpreted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from string import Formatter

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TemplateSyntaxError(ValueError):
    """The template is malformed or uses a placeholder that is not a plain name."""


def variables(template: str) -> tuple[str, ...]:
    """The placeholder names of ``template`` in order of first use; ``TemplateSyntaxError`` if invalid."""
    try:
        parsed = list(Formatter().parse(template))
    except ValueError as exc:
        raise TemplateSyntaxError(f"invalid template: {exc}") from None
    names: dict[str, None] = {}
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not _IDENTIFIER.match(field) or spec or conversion:
            suffix = (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            shown = "{" + field + suffix + "}"
            raise TemplateSyntaxError(f"placeholder {shown} must be a plain name like {{topic}}")
        names.setdefault(field, None)
    return tuple(names)


def missing(template: str, values: Mapping[str, object]) -> tuple[str, ...]:
    """Placeholders of ``template`` that ``values`` does not provide."""
    return tuple(name for name in variables(template) if name not in values)


def render(template: str, values: Mapping[str, object]) -> str:
    """Substitute every placeholder; ``KeyError`` names the first missing one."""
    out: list[str] = []
    for literal, field, _spec, _conversion in Formatter().parse(template):
        out.append(literal)
        if field is not None:
            out.append(str(values[field]))
    return "".join(out)
