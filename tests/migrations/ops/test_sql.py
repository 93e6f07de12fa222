"""sql: raw SQL run at start (or at complete with onComplete); `down` on rollback."""

from __future__ import annotations

from _helpers import OLD, assert_clean, base, columns, start

SQL = """
operations:
  - sql:
      up: "CREATE TABLE audit (id serial PRIMARY KEY, what text); INSERT INTO audit (what) VALUES ('created')"
      down: DROP TABLE audit
  - sql:
      up: "UPDATE items SET price = price || '!'"
      onComplete: true
"""


def test_start_runs_up_and_complete_runs_on_complete(engine, sql):
    base(engine, sql)
    new = start(engine, "02_sql", SQL)
    assert columns(sql, "audit", new) == ["id", "what"]
    assert columns(sql, "audit", OLD) == []
    assert sql("SELECT what FROM audit", schema=new) == [("created",)]
    assert sql("SELECT price FROM items WHERE id=1", schema=new) == [("1",)]  # onComplete: not yet
    sql("INSERT INTO items (name, price) VALUES ('old', '4')", schema=OLD)
    sql("INSERT INTO audit (what) VALUES ('new')", schema=new)
    engine.complete()
    assert sql("SELECT price FROM items ORDER BY id", schema=new) == [("1!",), ("2!",), ("3!",), ("4!",)]
    assert sql("SELECT what FROM audit ORDER BY id", schema=new) == [("created",), ("new",)]
    assert_clean(sql, OLD)


def test_rollback_runs_down_and_keeps_every_row(engine, sql):
    base(engine, sql)
    new = start(engine, "02_sql", SQL)
    sql("INSERT INTO items (name, price) VALUES ('old', '4')", schema=OLD)
    assert engine.rollback() == "02_sql"
    assert columns(sql, "audit") == []
    assert sql("SELECT price FROM items ORDER BY id") == [("1",), ("2",), ("3",), ("4",)]
    assert_clean(sql, new)
