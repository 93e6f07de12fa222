"""drop_multicolumn_constraint, as pgroll's TestDropMultiColumnConstraint, its multi-operation cases and
TestDropMultiColumnConstraintValidation: from start the new version may write what the constraint
refuses, the old version keeps it, and each covered column's `down` rewrites the new version's values
for the old one; at complete the constraint is gone."""

from __future__ import annotations

import pytest
from _pgroll import (
    CHECK_TITLE,
    CHECK_VIOLATION,
    DB,
    FK_VIOLATION,
    PAD,
    UNIQUE_VIOLATION,
    Case,
    cleaned_up,
    create_table,
    execute,
    params,
    posts,
)

NOT_PORTED: dict[str, str] = {}


def drop(name: str, table: str, constraint: str, up: str, down: str, version: str = "") -> tuple[str, str]:
    schema = f"version_schema: {version}\n" if version else ""
    return (name, f"""{schema}operations:
  - drop_multicolumn_constraint:
      table: {table}
      name: {constraint}
      up: {up}
      down: {down}
""")


# --- a check constraint over two columns

PRODUCTS_PRICED = create_table("products", "{name: id, type: integer, pk: true}", "{name: name, type: text}",
                               "{name: price, type: integer}", "{name: discount, type: integer}",
                               version_schema="add_table")
CHECK_PRICE_DISCOUNT = ("02_create_check_constraint", """
version_schema: create_check_constraint
operations:
  - create_constraint:
      table: products
      name: products_check_price_discount
      columns: [price, discount]
      type: check
      check: (discount = 0) OR (price > 0)
      up: {price: price, discount: discount}
      down: {price: price, discount: discount}
""")
DROP_PRICE_DISCOUNT = drop("03_drop_check_constraint", "products", "products_check_price_discount",
                           "{price: price, discount: discount}",
                           '{price: "SELECT CASE price WHEN 0 THEN 100 ELSE 0 END", discount: discount}',
                           version="drop_check_constraint")


def product(id_: int, name: str, price: int, discount: int) -> dict[str, object]:
    return {"id": id_, "name": name, "price": price, "discount": discount}


def check_after_start(db: DB) -> None:
    db.insert_fails("create_check_constraint", "products", product(1, "apple", 0, 1), CHECK_VIOLATION)
    db.insert("create_check_constraint", "products", product(1, "apple", 1, 1))
    db.insert("drop_check_constraint", "products", product(2, "banana", 0, 1))
    assert db.rows("drop_check_constraint", "products") == [product(1, "apple", 1, 1), product(2, "banana", 0, 1)]
    assert db.rows("create_check_constraint", "products") == [product(1, "apple", 1, 1),
                                                              product(2, "banana", 100, 1)]


def check_after_complete(db: DB) -> None:
    db.insert("drop_check_constraint", "products", product(3, "carrot", 0, 1))
    assert db.rows("drop_check_constraint", "products") == [
        product(1, "apple", 1, 1), product(2, "banana", 100, 1), product(3, "carrot", 0, 1)]


# --- a unique constraint over two columns

PRODUCTS_DESCRIBED = create_table("products", "{name: id, type: integer, pk: true}", "{name: name, type: text}",
                                  "{name: description, type: text}")
UNIQUE_NAME_DESCRIPTION = ("02_create_unique_constraint", """
operations:
  - create_constraint:
      table: products
      name: products_unique_name_description
      columns: [name, description]
      type: unique
      up: {name: name, description: description}
      down: {name: name, description: description}
""")
DROP_NAME_DESCRIPTION = drop("03_drop_unique_constraint", "products", "products_unique_name_description",
                             "{name: name, description: description}",
                             "{name: \"name || '-foo'\", description: description}")


def described(id_: int, name: str) -> dict[str, object]:
    return {"id": id_, "name": name, "description": "red"}


def unique_after_start(db: DB) -> None:
    db.insert("02_create_unique_constraint", "products", described(1, "apple"))
    db.insert_fails("02_create_unique_constraint", "products", described(2, "apple"), UNIQUE_VIOLATION)
    db.insert("03_drop_unique_constraint", "products", described(2, "apple"))
    assert db.rows("03_drop_unique_constraint", "products") == [described(1, "apple"), described(2, "apple")]
    assert db.rows("02_create_unique_constraint", "products") == [described(1, "apple"), described(2, "apple-foo")]


def unique_after_complete(db: DB) -> None:
    db.insert("03_drop_unique_constraint", "products", described(3, "apple"))
    assert db.rows("03_drop_unique_constraint", "products") == [
        described(1, "apple"), described(2, "apple-foo"), described(3, "apple")]


# --- a foreign key over two columns

USERS_REPORTS = ("01_create_tables", """
operations:
  - create_table:
      name: users
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: varchar(255)}
        - {name: zip, type: integer, pk: true}
  - create_table:
      name: reports
      columns:
        - {name: id, type: integer, pk: true}
        - {name: description, type: varchar(255)}
        - {name: user_id, type: integer, nullable: true}
        - {name: user_zip, type: integer, nullable: true}
""")
FK_USERS_REPORTS = ("02_create_fk_constraint", """
operations:
  - create_constraint:
      name: fk_users_reports
      table: reports
      type: foreign_key
      columns: [user_id, user_zip]
      references: {table: users, columns: [id, zip]}
      up: {user_id: user_id, user_zip: user_zip}
      down: {user_id: user_id, user_zip: user_zip}
""")
DROP_FK = drop("03_drop_fk_constraint", "reports", "fk_users_reports", "{user_id: user_id, user_zip: user_zip}",
               '{user_id: "1", user_zip: user_zip}')


def report(id_: int, description: str, user_id: int) -> dict[str, object]:
    return {"id": id_, "description": description, "user_id": user_id, "user_zip": 12345}


def fk_after_start(db: DB) -> None:
    db.insert("03_drop_fk_constraint", "users", {"id": 1, "name": "alice", "zip": 12345})
    db.insert("02_create_fk_constraint", "reports", report(1, "awesome", 1))
    db.insert_fails("02_create_fk_constraint", "reports", report(2, "awesome", 2), FK_VIOLATION)
    db.insert("03_drop_fk_constraint", "reports", report(2, "better", 2))
    assert db.rows("03_drop_fk_constraint", "reports") == [report(1, "awesome", 1), report(2, "better", 2)]
    assert db.rows("02_create_fk_constraint", "reports") == [report(1, "awesome", 1), report(2, "better", 1)]


def fk_after_complete(db: DB) -> None:
    db.insert("03_drop_fk_constraint", "reports", report(3, "consistent", 2))
    assert db.rows("03_drop_fk_constraint", "reports") == [
        report(1, "awesome", 1), report(2, "better", 1), report(3, "consistent", 2)]


# --- with other operations of the same migration

ITEMS_CHECKED = ("01_create_table", """
operations:
  - create_table:
      name: items
      columns:
        - {name: id, type: int, pk: true}
        - name: name
          type: varchar(255)
          nullable: true
          check: {name: check_name_length, constraint: length(name) > 3}
""")
RENAME_TABLE = "  - rename_table: {from: items, to: products}\n"
RENAME_NAME = "  - rename_column: {table: products, from: name, to: item_name}\n"


def drop_length_check(column: str) -> str:
    pad = PAD.replace("title", column)
    return f"""  - drop_multicolumn_constraint:
      table: products
      name: check_name_length
      down: {{{column}: "{pad}"}}
      up: {{{column}: {column}}}
"""


def renamed_after_start(column: str):  # noqa: ANN201
    def check(db: DB) -> None:
        db.insert("02_multi_operation", "products", {"id": 1, column: "a"})
        db.insert_fails("01_create_table", "items", {"id": 2, "name": "b"}, CHECK_VIOLATION)
        db.insert("01_create_table", "items", {"id": 2, "name": "bananas"})
        assert db.rows("02_multi_operation", "products") == [{"id": 1, column: "a"}, {"id": 2, column: "bananas"}]
        assert db.rows("01_create_table", "items") == [{"id": 1, "name": "---a"}, {"id": 2, "name": "bananas"}]
    return check


def renamed_after_complete(column: str):  # noqa: ANN201
    def check(db: DB) -> None:
        db.insert("02_multi_operation", "products", {"id": 3, column: "c"})
        assert db.rows("02_multi_operation", "products") == [
            {"id": 1, column: "---a"}, {"id": 2, column: "bananas"}, {"id": 3, column: "c"}]
        cleaned_up(db)
    return check


# --- validation

DOWN_TITLE = f'"{PAD}"'


def drop_with(fields: str) -> list[tuple[str, str]]:
    return [posts(), CHECK_TITLE, ("03_drop_check_constraint", f"""
operations:
  - drop_multicolumn_constraint: {{{fields}}}
""")]


CASES = [
    Case("can drop a multi-column check constraint", [PRODUCTS_PRICED, CHECK_PRICE_DISCOUNT, DROP_PRICE_DISCOUNT],
         check_after_start, cleaned_up, check_after_complete),
    Case("can drop a multi-column unique constraint",
         [PRODUCTS_DESCRIBED, UNIQUE_NAME_DESCRIPTION, DROP_NAME_DESCRIPTION], unique_after_start, cleaned_up,
         unique_after_complete),
    Case("can drop a multi-column foreign key constraint", [USERS_REPORTS, FK_USERS_REPORTS, DROP_FK],
         fk_after_start, cleaned_up, fk_after_complete),
    Case("rename table, drop constraint",
         [ITEMS_CHECKED, ("02_multi_operation", "operations:\n" + RENAME_TABLE + drop_length_check("name"))],
         renamed_after_start("name"), cleaned_up, renamed_after_complete("name")),
    Case("rename table, rename column, drop constraint",
         [ITEMS_CHECKED, ("02_multi_operation", "operations:\n" + RENAME_TABLE + RENAME_NAME
                          + drop_length_check("item_name"))],
         renamed_after_start("item_name"), cleaned_up, renamed_after_complete("item_name")),
    Case("table must exist",
         drop_with(f"table: doesntexist, name: check_title_length, up: {{title: title}}, down: {{title: {DOWN_TITLE}}}"),
         start_error="doesntexist"),
    Case("constraint must exist",
         drop_with(f"table: posts, name: doesntexist, up: {{title: title}}, down: {{title: {DOWN_TITLE}}}"),
         start_error="constraint 'doesntexist' does not exist on table 'posts'"),
    Case("name is mandatory",
         drop_with(f"table: posts, up: {{title: title}}, down: {{title: {DOWN_TITLE}}}"),
         start_error="drop_multicolumn_constraint.name: required field missing"),
    Case("down SQL is mandatory",
         drop_with("table: posts, name: check_title_length, up: {title: title}"),
         start_error="down"),
    Case("down SQL must be present for all columns covered by the constraint",
         drop_with("table: posts, name: check_title_length, up: {title: title}, down: {}"),
         start_error="down has no expression for column 'title'"),
    Case("down SQL for columns not covered by the constraint is not allowed",
         drop_with(f"table: posts, name: check_title_length, down: {{title: {DOWN_TITLE}, not_covered: not_covered}}"),
         start_error="down names column 'not_covered', which constraint 'check_title_length' does not cover"),
    Case("up SQL for columns not covered by the constraint is not allowed",
         drop_with(f"table: posts, name: check_title_length, up: {{not_covered: not_covered}}, "
                   f"down: {{title: {DOWN_TITLE}}}"),
         start_error="up names column 'not_covered', which constraint 'check_title_length' does not cover"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_drop_multicolumn_constraint(dsn: str, case: Case) -> None:
    execute(dsn, case)
