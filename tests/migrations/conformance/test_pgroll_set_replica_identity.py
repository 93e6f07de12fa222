"""set_replica_identity, as pgroll's TestSetReplicaIdentity and TestSetReplicaIdentityValidation: the table's
replica identity changes at start (a catalog change only; complete has nothing left to do)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _pgroll import DB, SERIAL_ID, Case, create_table, execute, params

NOT_PORTED: dict[str, str] = {}

USERS = create_table("users", SERIAL_ID, "{name: name, type: varchar(255), nullable: false}")
USERS_UNIQUE_NAME = create_table("users", SERIAL_ID, "{name: name, type: varchar(255), unique: true}")


def set_identity(identity: str, table: str = "users", name: str = "02_set_replica_identity") -> tuple[str, str]:
    return (name, f"""
operations:
  - set_replica_identity: {{table: {table}, identity: {identity}}}
""")


def identity_is(expected: str) -> Callable[[DB], None]:
    """relreplident of users: d (default), n (nothing), f (full) or i (index)."""

    def check(db: DB) -> None:
        assert db.replica_identity("users") == expected

    return check


def identity_case(name: str, identity: str, expected: str) -> Case:
    # pgroll checks after start only; its complete is a no-op, so the identity stays as start set it
    return Case(name, [USERS, set_identity(identity)], after_start=identity_is(expected),
                after_complete=identity_is(expected))


CASES = [
    identity_case("set replica identity to FULL", "{type: full}", "f"),
    identity_case("set replica identity to NOTHING", "{type: nothing}", "n"),
    identity_case("set replica identity to DEFAULT", "{type: default}", "d"),
    identity_case("set replica identity to USING INDEX", "{type: index, index: users_pkey}", "i"),
    # TestSetReplicaIdentityValidation
    Case("table must exist", [USERS_UNIQUE_NAME, set_identity("{type: default}", "doesntexist", "02_add_column")],
         start_error="table 'doesntexist' does not exist"),
    Case("identity must be valid",
         [USERS_UNIQUE_NAME, set_identity("{type: invalid_identity}", name="02_add_column")],
         start_error="identity.type must be full, default, nothing or index"),
    Case("index name must be valid",
         [USERS_UNIQUE_NAME, set_identity("{type: index, index: invalid_index}", name="02_add_column")],
         start_error='index "invalid_index" for table "users" does not exist'),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_set_replica_identity(dsn: str, case: Case) -> None:
    execute(dsn, case)
