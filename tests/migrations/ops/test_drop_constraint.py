"""drop_constraint and drop_multicolumn_constraint, as pgroll does them: the columns are duplicated without
the constraint at start (the old version keeps it), the old ones dropped at complete."""

from __future__ import annotations

import psycopg
import pytest
from _helpers import OLD, WITH_CHECK, assert_clean, base, constraints, start

BASE = WITH_CHECK + """\
  - sql: {up: "ALTER TABLE items ADD CONSTRAINT items_name_price_key UNIQUE (name, price)"}
"""
DROP = """
operations:
  - drop_constraint: {table: items, name: items_name_short, up: name, down: name}
"""
DROP_MULTI = """
operations:
  - drop_multicolumn_constraint: {table: items, name: items_name_price_key, down: {name: name, price: price}}
"""


def test_drop_constraint(engine, sql):
    base(engine, sql, BASE)
    new = start(engine, "02_drop_check", DROP)
    sql("INSERT INTO items (name) VALUES ('old')", schema=OLD)
    sql("INSERT INTO items (name) VALUES ('new')", schema=new)
    with pytest.raises(psycopg.errors.CheckViolation):  # still enforced until complete
        sql("INSERT INTO items (name) VALUES ('much too long')", schema=OLD)
    engine.complete()
    assert "items_name_short" not in constraints(sql, "items")
    sql("INSERT INTO items (name) VALUES ('much too long')", schema=new)
    assert sql("SELECT count(*) FROM items", schema=new) == [(6,)]
    assert_clean(sql, OLD)


def test_drop_multicolumn_constraint(engine, sql):
    base(engine, sql, BASE)
    new = start(engine, "02_drop_unique", DROP_MULTI)
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql("INSERT INTO items (name, price) VALUES ('n1', '1')", schema=OLD)
    engine.complete()
    assert "items_name_price_key" not in constraints(sql, "items")
    sql("INSERT INTO items (name, price) VALUES ('n1', '1')", schema=new)
    assert sql("SELECT count(*) FROM items WHERE name='n1'", schema=new) == [(2,)]
    assert_clean(sql, OLD)


def test_the_new_version_may_already_write_what_the_dropped_constraint_refused(engine, sql):
    """As in pgroll: the new version writes to a duplicate without the constraint; `down` makes a value the
    old version's column (which keeps it) accepts."""
    base(engine, sql, BASE)
    new = start(engine, "02_drop_check", DROP.replace("down: name", "down: \"LEFT(name, 9)\""))
    sql("INSERT INTO items (name) VALUES ('much too long')", schema=new)
    assert sql("SELECT name FROM items ORDER BY id DESC LIMIT 1", schema=new) == [("much too long",)]
    assert sql("SELECT name FROM items ORDER BY id DESC LIMIT 1", schema=OLD) == [("much too ",)]
    with pytest.raises(psycopg.errors.CheckViolation):  # the old version still has it
        sql("INSERT INTO items (name) VALUES ('much too long')", schema=OLD)
    engine.complete()
    assert sql("SELECT name FROM items ORDER BY id DESC LIMIT 1", schema=new) == [("much too long",)]
    assert_clean(sql, OLD)


@pytest.mark.parametrize("text", [DROP, DROP_MULTI], ids=["drop_constraint", "drop_multicolumn_constraint"])
def test_rollback_keeps_the_constraint(engine, sql, text):
    base(engine, sql, BASE)
    before = constraints(sql, "items")
    new = start(engine, "02_drop", text)
    sql("INSERT INTO items (name) VALUES ('new')", schema=new)
    assert engine.rollback() == "02_drop"
    assert constraints(sql, "items") == before
    assert sql("SELECT count(*) FROM items") == [(4,)]
    assert_clean(sql, new)
