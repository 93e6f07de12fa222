"""alter_column with references, as pgroll's TestSetForeignKey, TestSetForeignKeyInMultiOperationMigrations
and TestSetForeignKeyValidation: the foreign key exists NOT VALID on the new version's column from start, so
only the new version's writes must reference an existing row (`up` nulls the old version's dangling ones);
complete validates it. Existing defaults, checks, NOT NULL, unique constraints, foreign keys and comments of
the column carry over."""

from __future__ import annotations

from typing import Any

import pytest
from _pgroll import (
    CHECK_VIOLATION,
    DB,
    FK_VIOLATION,
    KEEP_KNOWN,
    NOT_NULL_VIOLATION,
    UNIQUE_VIOLATION,
    Case,
    cleaned_up,
    comment_kept,
    execute,
    params,
    set_fk,
    set_unique,
    users_and_posts,
)

NOT_PORTED: dict[str, str] = {}


def posts(db: DB, version: str, table: str = "posts") -> list[tuple[Any, ...]]:
    """Every row of `table` through `version`, as tuples in column order."""
    return [tuple(r.values()) for r in db.rows(version, table)]


def duplicate_foreign_keys(db: DB, table: str, column: str) -> list[dict[str, Any]]:
    """The foreign keys on Symphony's stand-in column for `column` (pgroll's `_pgroll_dup_<fk>`), each with
    its validated flag and on delete / on update actions."""
    found = db._run(
        "SELECT c.convalidated, c.confdeltype, c.confupdtype FROM pg_constraint c JOIN pg_attribute a ON "
        "a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) WHERE c.conrelid = %s::regclass AND c.contype = 'f' "
        "AND a.attname LIKE '\\_symphony\\_%%' AND strpos(a.attname, %s) > 0", (f'public."{table}"', column))
    return [{"validated": v, "on_delete": d, "on_update": u} for v, d, u in found]


# -- add foreign key constraint ---------------------------------------------------------------------------

V1, V2 = "add_tables", "add_fk_constraint"


def add_fk_after_start(db: DB) -> None:
    assert db.duplicate_of("posts", "user_id")
    assert db.not_validated_foreign_key("posts", "fk_users_id")
    db.insert(V2, "users", {"name": "alice"})
    db.insert(V2, "users", {"name": "bob"})
    db.insert(V2, "posts", {"title": "post by alice", "user_id": 1})
    db.insert_fails(V2, "posts", {"title": "post by unknown user", "user_id": 3}, FK_VIOLATION)
    assert posts(db, V1) == [(1, "post by alice", 1)]
    db.insert(V1, "posts", {"title": "post by bob", "user_id": 2})
    db.insert(V1, "posts", {"title": "post by unknown user", "user_id": 3})  # the old version has no key
    assert posts(db, V2) == [(1, "post by alice", 1), (3, "post by bob", 2), (4, "post by unknown user", None)]


def add_fk_after_complete(db: DB) -> None:
    assert not db.duplicate_of("posts", "user_id")
    assert db.validated_foreign_key("posts", "fk_users_id")
    db.insert(V2, "posts", {"title": "another post by alice", "user_id": 1})
    db.insert_fails(V2, "posts", {"title": "post by unknown user", "user_id": 3}, FK_VIOLATION)
    assert posts(db, V2) == [(1, "post by alice", 1), (3, "post by bob", 2), (4, "post by unknown user", None),
                             (5, "another post by alice", 1)]
    assert db.leftovers() == []


# -- on delete actions (no version_schema: the versions are named after the migrations) -------------------

NEW = "02_add_fk_constraint"


def alice_and_bob(db: DB, *more: str) -> None:
    for name in ("alice", "bob", *more):
        db.insert(NEW, "users", {"name": name})
    db.insert(NEW, "posts", {"title": "post by alice", "user_id": 1})


def no_action_after_start(db: DB) -> None:
    alice_and_bob(db)
    db.delete_fails(NEW, "users", {"name": "alice"}, FK_VIOLATION)


def no_action_after_complete(db: DB) -> None:
    db.delete_fails(NEW, "users", {"name": "alice"}, FK_VIOLATION)


def cascade_after_start(db: DB) -> None:
    alice_and_bob(db)
    db.delete(NEW, "users", {"name": "alice"})
    assert posts(db, NEW) == []


def cascade_after_complete(db: DB) -> None:
    db.insert(NEW, "posts", {"title": "post by bob", "user_id": 2})
    db.delete(NEW, "users", {"name": "bob"})
    assert posts(db, NEW) == []


def set_null_after_start(db: DB) -> None:
    alice_and_bob(db)
    db.delete(NEW, "users", {"name": "alice"})
    assert posts(db, NEW) == [(1, "post by alice", None)]


def set_null_after_complete(db: DB) -> None:
    db.insert(NEW, "posts", {"title": "post by bob", "user_id": 2})
    db.delete(NEW, "users", {"name": "bob"})
    assert posts(db, NEW) == [(1, "post by alice", None), (2, "post by bob", None)]


def set_default_after_start(db: DB) -> None:
    alice_and_bob(db, "carl")
    db.delete(NEW, "users", {"name": "alice"})
    assert posts(db, NEW) == [(1, "post by alice", 3)]  # carl, the column's default


def set_default_after_complete(db: DB) -> None:
    db.insert(NEW, "posts", {"title": "post by bob", "user_id": 2})
    db.delete(NEW, "users", {"name": "bob"})
    assert posts(db, NEW) == [(1, "post by alice", 3), (2, "post by bob", 3)]


# -- what the column had before is kept ----------------------------------------------------------------

def default_after_start(db: DB) -> None:
    db.insert(NEW, "users", {"name": "alice"})
    db.insert(NEW, "posts", {"title": "post by alice"})
    assert posts(db, NEW) == [(1, "post by alice", 1)]


def default_after_complete(db: DB) -> None:
    db.insert(NEW, "posts", {"title": "another post by alice"})
    assert posts(db, NEW) == [(1, "post by alice", 1), (2, "another post by alice", 1)]


def existing_fk_after_start(db: DB) -> None:
    assert duplicate_foreign_keys(db, "posts", "user_id").count(
        {"validated": True, "on_delete": "c", "on_update": "a"}) == 1  # fk_users_id_1, on the stand-in


def existing_fk_after_complete(db: DB) -> None:
    found = db.constraint("posts", "fk_users_id_1") or {}
    assert (found.get("kind"), found.get("validated"), found.get("on_delete"), found.get("on_update")) == \
        ("f", True, "c", "a")


def check_after_start(db: DB) -> None:
    db.insert(NEW, "users", {"name": "alice"})
    db.insert_fails(NEW, "posts", {"id": 1, "user_id": 1, "title": "a"}, CHECK_VIOLATION)


def check_after_complete(db: DB) -> None:
    db.insert_fails(NEW, "posts", {"id": 2, "user_id": 1, "title": "b"}, CHECK_VIOLATION)


def not_null_after_start(db: DB) -> None:
    db.insert_fails(NEW, "posts", {"id": 1, "title": "post by alice"}, NOT_NULL_VIOLATION)


UNIQUE = set_unique("posts", "user_id", "unique_user_id")
THIRD = "03_add_fk_constraint"


def unique_after_start(db: DB) -> None:
    db.insert(THIRD, "users", {"name": "alice", "id": 1})
    db.insert(THIRD, "posts", {"title": "post by alice", "user_id": 1})
    db.insert_fails(THIRD, "posts", {"title": "post by alice 2", "user_id": 1}, UNIQUE_VIOLATION)


def unique_after_complete(db: DB) -> None:
    assert db.unique_exists("posts", "unique_user_id")
    db.insert_fails(THIRD, "posts", {"title": "post by alice 3", "user_id": 1}, UNIQUE_VIOLATION)
    db.insert(THIRD, "users", {"name": "bob", "id": 2})
    db.insert(THIRD, "posts", {"title": "post by bob", "user_id": 2})


comment_after_start, comment_after_complete = comment_kept("posts", "user_id", "the id of the author")


# -- in migrations of several operations: items and suppliers ----------------------------------------------

ITEMS = ("01_create_tables", """
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: int, pk: true}
        - {name: name, type: varchar(255)}
        - {name: supplier_id, type: int, nullable: true}
  - create_table:
      name: suppliers
      columns:
        - {name: id, type: int, pk: true}
        - {name: name, type: varchar(255)}
""")
OLD, MULTI = "01_create_tables", "02_multi_operation"


def multi(*operations: str) -> tuple[str, str]:
    return (MULTI, "operations:\n" + "".join(operations))


def keep_known(suppliers: str, column: str) -> str:
    return f"SELECT CASE WHEN EXISTS (SELECT 1 FROM {suppliers} WHERE {suppliers}.id = {column}) " \
           f"THEN {column} ELSE NULL END"


RENAME_ITEMS = "  - rename_table: {from: items, to: products}\n"


def fk_on(table: str, column: str, fk: str, ref_table: str, ref_column: str, up: str) -> str:
    return f"""  - alter_column:
      table: {table}
      column: {column}
      references: {{name: {fk}, table: {ref_table}, column: {ref_column}}}
      up: "{up}"
      down: {column}
"""


def multi_checks(supplier_table: str, supplier_key: str, new_table: str, new_column: str) -> tuple[Any, Any, Any]:
    """pgroll's checks of its four multi-operation cases: the supplier and item tables and the item's
    reference column as the new version names them."""

    def after_start(db: DB) -> None:
        db.insert(MULTI, supplier_table, {supplier_key: 1, "name": "supplier1"})
        db.insert(MULTI, new_table, {"id": 1, "name": "apples", new_column: 1})
        db.insert_fails(MULTI, new_table, {"id": 2, "name": "bananas", new_column: 999}, FK_VIOLATION)
        db.insert(OLD, "items", {"id": 2, "name": "bananas", "supplier_id": 999})
        assert posts(db, MULTI, new_table) == [(1, "apples", 1), (2, "bananas", None)]
        assert posts(db, OLD, "items") == [(1, "apples", 1), (2, "bananas", 999)]

    def after_complete(db: DB) -> None:
        db.insert(MULTI, new_table, {"id": 3, "name": "carrots", new_column: 1})
        db.insert_fails(MULTI, new_table, {"id": 4, "name": "durian", new_column: 999}, FK_VIOLATION)
        assert posts(db, MULTI, new_table) == [(1, "apples", 1), (2, "bananas", None), (3, "carrots", 1)]

    return after_start, cleaned_up, after_complete


# -- validation -------------------------------------------------------------------------------------------

STRICT_TABLES = users_and_posts(user_id="{name: user_id, type: integer}")


def invalid_fk(reference: str) -> tuple[str, str]:
    return ("02_add_fk_constraint", f"""
operations:
  - alter_column:
      table: posts
      column: user_id
      references: {reference}
      up: "{KEEP_KNOWN}"
      down: user_id
""")


CASES = [
    Case("add foreign key constraint", [users_and_posts(version_schema=V1), set_fk(version_schema=V2)],
         add_fk_after_start, cleaned_up, add_fk_after_complete),
    Case("on delete NO ACTION is the default behavior when removing referenced rows",
         [users_and_posts(), set_fk()], no_action_after_start, None, no_action_after_complete),
    Case("on delete CASCADE allows referenced rows to be removed",
         [users_and_posts(), set_fk(extra=", on_delete: CASCADE")], cascade_after_start, None,
         cascade_after_complete),
    Case("on delete SET NULL allows referenced rows to be removed",
         [users_and_posts(), set_fk(extra=", on_delete: SET NULL")], set_null_after_start, None,
         set_null_after_complete),
    Case("on delete SET DEFAULT allows referenced rows to be removed",
         [users_and_posts(user_id="{name: user_id, type: integer, nullable: true, default: '3'}"),
          set_fk(extra=", on_delete: SET DEFAULT")], set_default_after_start, None, set_default_after_complete),
    Case("column defaults are preserved when adding a foreign key constraint",
         [users_and_posts(user_id="{name: user_id, type: integer, default: '1'}"), set_fk()],
         default_after_start, None, default_after_complete),
    Case("existing FK constraints on a column are preserved when adding a foreign key constraint",
         [users_and_posts(user_id="{name: user_id, type: integer, default: '1'}"),
          set_fk(fk="fk_users_id_1", extra=", on_delete: CASCADE"), set_fk("03_add_fk_constraint", "fk_users_id_2")],
         existing_fk_after_start, None, existing_fk_after_complete),
    Case("check constraints on a column are preserved when adding a foreign key constraint",
         [users_and_posts(
             user_id="{name: user_id, type: integer}",
             title="{name: title, type: text, check: {name: title_length, constraint: length(title) > 3}}"),
          set_fk()], check_after_start, None, check_after_complete),
    Case("not null is preserved when adding a foreign key constraint",
         [users_and_posts(user_id="{name: user_id, type: integer, nullable: false}",
                          title="{name: title, type: text, nullable: true}"), set_fk()],
         not_null_after_start, None, not_null_after_start),
    Case("unique constraints are preserved when adding a foreign key constraint",
         [users_and_posts(user_id="{name: user_id, type: integer}"), UNIQUE, set_fk(THIRD)],
         unique_after_start, None, unique_after_complete),
    Case("comments are preserved when adding a foreign key constraint",
         [users_and_posts(user_id="{name: user_id, type: integer, comment: the id of the author}"), set_fk()],
         comment_after_start, None, comment_after_complete),
    Case("validate that foreign key name is unique",
         [users_and_posts(), set_fk(), set_fk("03_add_fk_constraint_again")],
         start_error="constraint 'fk_users_id' already exists on table 'posts'"),
    # TestSetForeignKeyInMultiOperationMigrations
    Case("rename referencing table, set fk",
         [ITEMS, multi(RENAME_ITEMS, fk_on("products", "supplier_id", "fk_products_suppliers", "suppliers", "id",
                                           keep_known("suppliers", "supplier_id")))],
         *multi_checks("suppliers", "id", "products", "supplier_id")),
    Case("rename referencing table, rename referencing column, set fk",
         [ITEMS, multi(RENAME_ITEMS, "  - rename_column: {table: products, from: supplier_id, to: sup_id}\n",
                       fk_on("products", "sup_id", "fk_products_suppliers", "suppliers", "id",
                             keep_known("suppliers", "sup_id")))],
         *multi_checks("suppliers", "id", "products", "sup_id")),
    Case("rename referenced table, set fk",  # `up` still names the referenced table by its old name, as pgroll's
         [ITEMS, multi("  - rename_table: {from: suppliers, to: producers}\n",
                       fk_on("items", "supplier_id", "fk_items_producers", "producers", "id",
                             keep_known("suppliers", "supplier_id")))],
         *multi_checks("producers", "id", "items", "supplier_id")),
    Case("rename referenced column, set fk",  # `up` still names the referenced column by its old name
         [ITEMS, multi("  - rename_column: {table: suppliers, from: id, to: supplier_id}\n",
                       fk_on("items", "supplier_id", "fk_items_suppliers", "suppliers", "supplier_id",
                             keep_known("suppliers", "supplier_id")))],
         *multi_checks("suppliers", "supplier_id", "items", "supplier_id")),
    # TestSetForeignKeyValidation
    Case("foreign key must have a name", [STRICT_TABLES, invalid_fk("{table: users, column: id}")],
         start_error="references.name"),
    Case("referenced table must exist",
         [STRICT_TABLES, invalid_fk("{name: fk_doesntexist_id, table: doesntexist, column: id}")],
         start_error='relation "public.doesntexist" does not exist'),
    Case("referenced column must exist",
         [STRICT_TABLES, invalid_fk("{name: fk_users_doesntexist, table: users, column: doesntexist}")],
         start_error='column "doesntexist" referenced in foreign key constraint does not exist'),
    Case("on_delete must be a valid value",
         [STRICT_TABLES, invalid_fk("{name: fk_users_doesntexist, table: users, column: id, on_delete: invalid}")],
         start_error="references.on_delete: Input should be"),
    # pgroll upper-cases on_delete before checking it; its case of this name passes NO ACTION, we spell it lower
    Case("on_delete can be specified as lowercase",
         [STRICT_TABLES, invalid_fk("{name: fk_users_doesntexist, table: users, column: id, on_delete: no action}")]),
    Case("on_delete can be specified as uppercase",
         [STRICT_TABLES, invalid_fk("{name: fk_users_doesntexist, table: users, column: id, on_delete: SET NULL}")]),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_set_fk(dsn: str, case: Case) -> None:
    execute(dsn, case)
