"""Differences between two configs, in words: what a plan shows a person."""

from __future__ import annotations

from typing import Any


def diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Differences between two configs as 'key: old -> new' lines (nested keys joined by dots)."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(diff(a, b, path + "."))
        elif a is None:
            out.append(f"{path}: set to {_show(b)}")
        elif b is None:
            out.append(f"{path}: removed (was {_show(a)})")
        else:
            out.append(f"{path}: {_show(a)} -> {_show(b)}")
    return out


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)
