"""alter_column: type, nullability, default, comment, check, unique, references, rename; and an
alter on a column renamed earlier in the same migration."""

import pytest
from _base import OLD, columns, items
from conftest import migration


def _run(engine, sql, text: str, name: str = "02_alter") -> str:
    items(engine, sql)
    engine.start(migration(name, text), 1)
    return f"public_{name}"


def test_type_change_converts_both_ways(engine, sql):
    new = _run(engine, sql, """
    operations:
      - alter_column: {table: items, column: price, type: integer, up: "CAST(price AS integer)", down: "CAST(price AS text)"}
    """)
    assert sql("SELECT price FROM items WHERE id=2", schema=new) == [(20,)]
    sql("INSERT INTO items (name, price) VALUES ('old', '7')", schema=OLD)
    assert sql("SELECT price FROM items WHERE name='old'", schema=new) == [(7,)]
    sql("INSERT INTO items (name, price) VALUES ('new', 9)", schema=new)
    assert sql("SELECT price FROM items WHERE name='new'", schema=OLD) == [("9",)]
    engine.complete()
    assert sql("SELECT data_type FROM information_schema.columns WHERE table_schema='public' AND table_name='items' "
               "AND column_name='price'") == [("integer",)]
    assert columns(sql) == ["id", "name", "price"]


def test_set_not_null_fills_old_writes_with_up(engine, sql):
    new = _run(engine, sql, """
    operations:
      - alter_column: {table: items, column: name, nullable: false, up: "COALESCE(name, 'unnamed')", down: name}
    """)
    sql("INSERT INTO items (name, price) VALUES (NULL, '1')", schema=OLD)
    assert sql("SELECT count(*) FROM items WHERE name IS NULL", schema=new) == [(0,)]
    engine.complete()
    with pytest.raises(Exception, match="null value"):
        sql("INSERT INTO items (name, price) VALUES (NULL, '1')")


def test_drop_not_null(engine, sql):
    items(engine, sql)
    engine.start(migration("02_nn", """
    operations:
      - alter_column: {table: items, column: name, nullable: false, up: "COALESCE(name, 'x')", down: name}
    """), 1)
    engine.complete()
    engine.start(migration("03_null", """
    operations:
      - alter_column: {table: items, column: name, nullable: true, up: name, down: "COALESCE(name, 'x')"}
    """), 2)
    sql("INSERT INTO items (name, price) VALUES (NULL, '1')", schema="public_03_null")
    engine.complete()
    sql("INSERT INTO items (name, price) VALUES (NULL, '2')")
    assert sql("SELECT count(*) FROM items WHERE name IS NULL") == [(2,)]


def test_default_change_applies_to_the_new_version_at_once(engine, sql):
    new = _run(engine, sql, "operations:\n  - alter_column: {table: items, column: price, default: \"'free'\"}\n")
    sql("INSERT INTO items (name) VALUES ('new')", schema=new)
    assert sql("SELECT price FROM items WHERE name='new'", schema=new) == [("free",)]
    engine.complete()
    sql("INSERT INTO items (name) VALUES ('later')")
    assert sql("SELECT price FROM items WHERE name='later'") == [("free",)]


def test_comment(engine, sql):
    _run(engine, sql, "operations:\n  - alter_column: {table: items, column: price, comment: in cents}\n")
    engine.complete()
    assert sql("SELECT col_description('public.items'::regclass, 3)") == [("in cents",)]


def test_check_unique_and_references(engine, sql):
    items(engine, sql, rows=5)
    sql("CREATE TABLE owners (id int PRIMARY KEY)")
    sql("INSERT INTO owners SELECT g FROM generate_series(1, 5) g")
    sql("ALTER TABLE items ADD COLUMN owner int")
    sql("UPDATE items SET owner = id")
    engine.start(migration("02_rules", """
    operations:
      - alter_column: {table: items, column: name, unique: {name: items_name_key}, up: name, down: name}
      - alter_column:
          table: items
          column: owner
          references: {name: items_owner_fk, table: owners, column: id}
          up: owner
          down: owner
      - alter_column:
          table: items
          column: price
          check: {name: price_not_empty, constraint: "length(price) > 0"}
          up: "CASE WHEN price = '' THEN '0' ELSE price END"
          down: price
    """), 1)
    engine.complete()
    with pytest.raises(Exception, match="duplicate key"):
        sql("INSERT INTO items (name, price, owner) VALUES ('item1', '1', 1)")
    with pytest.raises(Exception, match="foreign key"):
        sql("INSERT INTO items (name, price, owner) VALUES ('z', '1', 99)")
    with pytest.raises(Exception, match="price_not_empty"):
        sql("INSERT INTO items (name, price, owner) VALUES ('y', '', 1)")


def test_rename_via_name_and_an_alter_on_the_renamed_column(engine, sql):
    new = _run(engine, sql, """
    operations:
      - alter_column: {table: items, column: name, name: title}
      - alter_column: {table: items, column: title, type: varchar(20), up: "left(title, 20)", down: title}
    """, name="02_title")
    assert sql("SELECT title FROM items WHERE id=1", schema=new) == [("item1",)]
    sql("INSERT INTO items (name, price) VALUES ('a name longer than twenty chars', '1')", schema=OLD)
    assert sql("SELECT title FROM items WHERE price='1'", schema=new) == [("a name longer than t",)]
    engine.complete()
    assert columns(sql) == ["id", "price", "title"] or columns(sql) == ["id", "title", "price"]
    assert sql("SELECT character_maximum_length FROM information_schema.columns WHERE table_schema='public' "
               "AND table_name='items' AND column_name='title'") == [(20,)]


def test_rollback_drops_the_shadow_and_keeps_rows(engine, sql):
    _run(engine, sql, """
    operations:
      - alter_column: {table: items, column: price, type: integer, up: "CAST(price AS integer)", down: "CAST(price AS text)"}
    """)
    sql("INSERT INTO items (name, price) VALUES ('during', '5')", schema=OLD)
    engine.rollback()
    assert columns(sql) == ["id", "name", "price"]
    assert sql("SELECT count(*) FROM items") == [(101,)]
