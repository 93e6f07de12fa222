"""The JSON Schema of symphony.yaml, for editors (`symphony schema`)."""

from __future__ import annotations

from typing import Any

from symphony.spec.models import Stack

SCHEMA_ID = "https://symphony.dev/schemas/stack.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a stack spec."""
    schema = Stack.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Symphony stack spec (symphony.yaml)",
        **{k: v for k, v in schema.items() if k != "title"},
    }
