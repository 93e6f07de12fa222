"""References to other services' outputs in env values: `${db.url}`, `${api.port}`.

A value may hold several references ("postgres://x@${db.host}:${db.port}/y"); `$${` is a literal `${`.
Anything else (a lone `$`, `$HOME`) is left as it is: Symphony never runs values through a shell.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from symphony.errors import SpecError

OUTPUTS: dict[str, tuple[str, ...]] = {
    "postgres": ("url", "host", "port", "user", "password", "database"),
    "service": ("url", "host", "port"),
    "job": (),
}
"""The outputs each kind of service publishes (a run service has url and port only if it sets a port)."""

# `$${` (an escaped literal), a complete `${...}`, or a `${` that is never closed.
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_INNER = re.compile(r"([a-z][a-z0-9_-]*)\.([a-z][a-z0-9_]*)")
_FIX = "write ${service.output}, e.g. ${db.url}; write $${ for a literal ${"


@dataclass(frozen=True)
class Ref:
    """One `${service.output}` reference; `text` is how it is written."""

    service: str
    output: str
    text: str


def find_refs(value: str) -> list[Ref]:
    """Every reference in `value`, in order. Raises SpecError on a malformed one (`${db}`, `${db.url`)."""
    if "${" not in value:  # the common case, and fast
        return []
    return [ref for match in _TOKEN.finditer(value) if (ref := _parse(match, value)) is not None]


def _parse(match: re.Match[str], value: str) -> Ref | None:
    """The reference a token stands for; None for the escape `$${`."""
    text = match.group(0)
    if text == "$${":
        return None
    inner = match.group(1)
    if inner is None:
        raise SpecError(f"unclosed reference in {value!r}", fix="close it with }; " + _FIX)
    parsed = _INNER.fullmatch(inner.strip())
    if parsed is None:
        raise SpecError(f"invalid reference {text!r}", fix=_FIX)
    return Ref(parsed.group(1), parsed.group(2), text)


def resolve(value: str, outputs: Mapping[str, Mapping[str, str]]) -> str:
    """`value` with every reference replaced by its output and `$${` by `${`.

    `outputs` maps service name to that service's outputs. A missing one raises SpecError.
    """
    if "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        ref = _parse(match, value)
        if ref is None:
            return "${"
        service = outputs.get(ref.service)
        if service is None:
            raise SpecError(f"{ref.text}: no outputs known for service '{ref.service}'")
        if ref.output not in service:
            valid = ", ".join(service) or "none"
            raise SpecError(f"{ref.text}: '{ref.service}' has no output '{ref.output}'", fix=f"valid outputs: {valid}")
        return str(service[ref.output])

    return _TOKEN.sub(substitute, value)
