"""drop_constraint and drop_multicolumn_constraint: dropped at complete."""

from _base import items
from conftest import migration


def test_drop_constraints_at_complete(engine, sql):
    items(engine, sql)
    sql("ALTER TABLE items ADD CONSTRAINT price_len CHECK (length(price) < 10)")
    sql("ALTER TABLE items ADD CONSTRAINT name_price UNIQUE (name, price)")
    engine.start(migration("02_drop", """
    operations:
      - drop_constraint: {table: items, name: price_len, up: price, down: price}
      - drop_multicolumn_constraint: {table: items, name: name_price, up: {}, down: {name: name, price: price}}
    """), 1)
    assert sql("SELECT count(*) FROM pg_constraint WHERE conname IN ('price_len', 'name_price')") == [(2,)]
    engine.complete()
    assert sql("SELECT count(*) FROM pg_constraint WHERE conname IN ('price_len', 'name_price')") == [(0,)]
