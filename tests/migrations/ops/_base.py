"""A table with rows, created and completed, that the operation tests start from."""

from conftest import migration

TABLE = """
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: text, nullable: true}
        - {name: price, type: text}
"""

OLD = "public_01_items"


def items(engine, sql, rows: int = 100) -> None:
    engine.start(migration("01_items", TABLE), 0)
    engine.complete()
    sql(f"INSERT INTO items (name, price) SELECT 'item' || g, (g * 10)::text FROM generate_series(1, {rows}) g")


def columns(sql, table: str = "items") -> list[str]:
    return [r[0] for r in sql("SELECT column_name FROM information_schema.columns WHERE table_schema='public' "
                              "AND table_name=%s ORDER BY ordinal_position", (table,))]
