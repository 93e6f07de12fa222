"""The fakes stay true to the protocol they stand in for: every method of Runtime and Migrator, with
the same parameters (so the engine tests cannot pass against a protocol the engine no longer uses)."""

from __future__ import annotations

import inspect

import pytest
from fake_runtime import FakeMigrator, FakeRuntime

from symphony.runtimes.base import Migrator, Runtime


def _methods(protocol: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in vars(protocol).items()
            if inspect.isfunction(member) and not name.startswith("_")}


@pytest.mark.parametrize(("protocol", "fake"), [(Runtime, FakeRuntime), (Migrator, FakeMigrator)])
def test_the_fake_implements_every_method_of_the_protocol(protocol, fake):
    for name, wanted in _methods(protocol).items():
        assert hasattr(fake, name), f"{fake.__name__} lacks {name}"
        got = inspect.signature(getattr(fake, name))
        assert list(got.parameters) == list(wanted.parameters), (name, got, wanted)


def test_the_fake_has_the_runtimes_attributes():
    runtime = FakeRuntime(parallelism=3)
    assert set(Runtime.__annotations__) <= set(vars(runtime)) | set(vars(FakeRuntime))
    assert runtime.parallelism == 3
