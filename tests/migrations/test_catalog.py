"""read_schema on a real PostgreSQL: the logical tables, their columns and the named constraints the
operations check names against."""

from __future__ import annotations

import psycopg
import pytest

from symphony.migrations.catalog import read_schema


def test_named_constraints_are_read_with_their_columns_in_order(dsn, sql):
    sql("""
        CREATE TABLE owners (id int PRIMARY KEY, code text, UNIQUE (code, id));
        CREATE TABLE pets (
            id int PRIMARY KEY,
            name text NOT NULL CONSTRAINT name_length CHECK (length(name) > 1),
            owner int CONSTRAINT pets_owner_fk REFERENCES owners (id),
            code text,
            CONSTRAINT pets_owner_code UNIQUE (owner, code),
            CONSTRAINT pets_no_twins EXCLUDE USING btree (owner WITH =, name WITH =),
            CONSTRAINT _symphony_nn_pets_code CHECK (code IS NOT NULL) NOT VALID
        );
    """)
    with psycopg.connect(dsn) as conn:
        schema = read_schema(conn)
    pets = schema.table("pets")
    assert pets.constraints == {
        "name_length": ["name"],
        "pets_owner_fk": ["owner"],
        "pets_owner_code": ["owner", "code"],
        "pets_no_twins": ["owner", "name"],
    }  # no primary key, no NOT NULL (a constraint of its own in PostgreSQL 18), nothing of Symphony's
    assert pets.pk == ["id"]
    assert schema.table("owners").constraints == {"owners_code_id_key": ["code", "id"]}


def test_constraints_follow_renamed_and_dropped_columns(dsn, sql):
    sql("CREATE TABLE t (a int, b int, c int, CONSTRAINT ab UNIQUE (a, b), CONSTRAINT c_positive CHECK (c > 0))")
    with psycopg.connect(dsn) as conn:
        table = read_schema(conn).table("t")
    table.rename_column("a", "x")
    assert table.constraint("ab") == ["x", "b"]
    table.drop_column("c")
    assert table.constraints == {"ab": ["x", "b"]}
    with pytest.raises(KeyError, match="constraint 'c_positive' does not exist on table 't'"):
        table.constraint("c_positive")
    with pytest.raises(ValueError, match="constraint 'ab' already exists on table 't'"):
        table.add_constraint("ab", ["b"])
