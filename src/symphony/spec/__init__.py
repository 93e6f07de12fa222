"""The stack spec: models, references between services, the loader and the JSON Schema."""

from symphony.spec.loader import SPEC_FILE, find_spec, load_stack, parse_stack
from symphony.spec.models import PostgresSpec, RolloutSpec, Service, Stack
from symphony.spec.refs import OUTPUTS, Ref, find_refs, resolve
from symphony.spec.schema import json_schema

__all__ = [
    "OUTPUTS",
    "SPEC_FILE",
    "PostgresSpec",
    "Ref",
    "RolloutSpec",
    "Service",
    "Stack",
    "find_refs",
    "find_spec",
    "json_schema",
    "load_stack",
    "parse_stack",
    "resolve",
]
