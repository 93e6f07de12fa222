"""Releases and migrations that fail in the ways the rollout tests do not try, on the fault stack under
load (tests/faults/_failing.py, the same trials bench/faults.py runs ten times each): a release that hangs
(never listens), one that becomes healthy only after its deadline, and a migration whose `up` fails
half-way through its backfill. Each is rolled back by itself with no failed request, leaves nothing running
or half-made behind, and the old spec plans clean afterwards."""

from __future__ import annotations

import pytest
from _failing import failing_migration, failing_release
from _harness import stack as stack  # noqa: F401 (the fixture, by its name)


@pytest.mark.parametrize("kind", ["hang", "too_slow"])
def test_a_release_that_never_becomes_healthy_in_time_is_rolled_back_under_load(stack, kind):
    found = failing_release(stack, kind)
    assert found["ok"], found


def test_a_migration_whose_up_fails_half_way_through_its_backfill_is_rolled_back_under_load(stack):
    found = failing_migration(stack)
    assert found["ok"], found
    # A second try of the same change (under another name) fails the same way: nothing was left behind.
    again = failing_migration(stack, trial=2)
    assert again["ok"], again
