"""drop_constraint, as pgroll's TestDropConstraint and TestDropConstraintValidation cases: the new version
may write what the constraint refused from start; `down` rewrites it for the old version, which keeps the
constraint; everything else on the column (default, not null, comment, other constraints) stays."""

from __future__ import annotations

import pytest
from _pgroll import (
    CHECK_TITLE,
    CHECK_VIOLATION,
    DB,
    FK_VIOLATION,
    KEEP_KNOWN,
    NOT_NULL_VIOLATION,
    PAD,
    POSTS,
    SERIAL_ID,
    UNIQUE_VIOLATION,
    Case,
    cleaned_up,
    create_table,
    execute,
    params,
    posts,
    set_fk,
    set_unique,
    titles,
    unique_kept,
    users_and_posts,
)

CHECK = ("02_add_check_constraint", f"""
version_schema: add_check_constraint
operations:
  - alter_column:
      table: posts
      column: title
      check: {{name: check_title_length, constraint: length(title) > 3}}
      up: "{PAD}"
      down: title
""")
DROP = ("03_drop_check_constraint", f"""
version_schema: drop_check_constraint
operations:
  - drop_constraint: {{table: posts, name: check_title_length, down: "{PAD}"}}
""")


def after_start(db: DB) -> None:
    assert db.duplicate_of("posts", "title")
    db.insert("add_check_constraint", "posts", {"title": "post by alice"})
    db.insert_fails("add_check_constraint", "posts", {"title": "b"}, CHECK_VIOLATION)
    assert titles(db, "drop_check_constraint") == [(1, "post by alice")]
    db.insert("drop_check_constraint", "posts", {"title": "post by carl"})
    db.insert("drop_check_constraint", "posts", {"title": "d"})  # refused by the old version's constraint
    assert titles(db, "add_check_constraint") == [(1, "post by alice"), (3, "post by carl"), (4, "---d")]


def after_complete(db: DB) -> None:
    db.insert("drop_check_constraint", "posts", {"title": "e"})
    assert titles(db, "drop_check_constraint") == [(1, "post by alice"), (3, "post by carl"), (4, "---d"), (5, "e")]
    cleaned_up(db)


# --- user-supplied up: the new version reads the old version's rows through `up`

POSTS_PLAIN = posts()
DROP_WITH_UP = ("03_drop_check_constraint", f"""
operations:
  - drop_constraint: {{table: posts, name: check_title_length, up: "title || '!'", down: "{PAD}"}}
""")


def user_up_after_start(db: DB) -> None:
    db.insert("02_add_check_constraint", "posts", {"title": "post by alice"})
    assert titles(db, "03_drop_check_constraint") == [(1, "post by alice!")]


# --- a foreign key: the new version may point at users that do not exist; `down` nulls them for the old

USERS_POSTS = users_and_posts()
ADD_FK = set_fk()
DROP_FK = ("03_drop_fk_constraint", f"""
operations:
  - drop_constraint: {{table: posts, name: fk_users_id, up: user_id, down: "{KEEP_KNOWN}"}}
""")


def posts_of(db: DB, version: str) -> list[tuple[int, str, int | None]]:
    return [(r["id"], r["title"], r["user_id"]) for r in db.rows(version, "posts")]


def fk_after_start(db: DB) -> None:
    assert db.duplicate_of("posts", "user_id")
    db.insert("03_drop_fk_constraint", "users", {"name": "alice"})
    db.insert("03_drop_fk_constraint", "users", {"name": "bob"})
    db.insert("03_drop_fk_constraint", "posts", {"title": "post by alice", "user_id": 1})
    db.insert("03_drop_fk_constraint", "posts", {"title": "post by unknown user", "user_id": 3})
    assert posts_of(db, "02_add_fk_constraint") == [(1, "post by alice", 1), (2, "post by unknown user", None)]
    db.insert("02_add_fk_constraint", "posts", {"title": "post by bob", "user_id": 2})
    db.insert_fails("02_add_fk_constraint", "posts", {"title": "post by unknown user", "user_id": 3}, FK_VIOLATION)
    assert posts_of(db, "03_drop_fk_constraint") == [
        (1, "post by alice", 1), (2, "post by unknown user", 3), (3, "post by bob", 2)]


def fk_after_complete(db: DB) -> None:
    assert not db.duplicate_of("posts", "user_id")
    db.insert("03_drop_fk_constraint", "posts", {"title": "another post by an unknown user", "user_id": 4})
    assert posts_of(db, "03_drop_fk_constraint") == [
        (1, "post by alice", 1), (2, "post by unknown user", None), (3, "post by bob", 2),
        (5, "another post by an unknown user", 4)]
    cleaned_up(db)


# --- unique constraints

USERS_UNIQUE_NAME = create_table("users", SERIAL_ID, "{name: name, type: text, unique: true}",
                                 migration="01_add_tables")
RANDOM_SUFFIX = "name || '-' || (random()*1000000)::integer"
DROP_NAME_KEY = ("02_drop_unique_constraint", f"""
operations:
  - drop_constraint: {{table: users, name: users_name_key, up: name, down: "{RANDOM_SUFFIX}"}}
""")


def unique_after_start(db: DB) -> None:
    assert db.duplicate_of("users", "name")
    db.insert("01_add_tables", "users", {"name": "alice"})
    db.insert_fails("01_add_tables", "users", {"name": "alice"}, UNIQUE_VIOLATION)
    db.insert("02_drop_unique_constraint", "users", {"name": "alice"})


def unique_after_complete(db: DB) -> None:
    cleaned_up(db)
    db.insert("02_drop_unique_constraint", "users", {"name": "alice"})


USERS_UNIQUE_SERIAL = create_table("users", SERIAL_ID, "{name: secondary_id, type: serial, unique: true}",
                                   migration="01_add_tables")
DROP_SERIAL_KEY = ("02_drop_unique_constraint", """
operations:
  - drop_constraint: {table: users, name: users_secondary_id_key, up: secondary_id, down: secondary_id}
""")


def serial_after_start(db: DB) -> None:
    assert db.duplicate_of("users", "secondary_id")
    db.insert("01_add_tables", "users", {"secondary_id": 1})
    db.insert_fails("01_add_tables", "users", {"secondary_id": 1}, UNIQUE_VIOLATION)


def serial_after_complete(db: DB) -> None:
    cleaned_up(db)
    db.insert("02_drop_unique_constraint", "users", {"secondary_id": 1})


USERS_UNIQUE_DEFAULT = create_table("users", SERIAL_ID,
                                    """{name: name, type: text, unique: true, default: "'anonymous'"}""")


def default_after_start(db: DB) -> None:
    db.insert("02_drop_unique_constraint", "users", {"id": 1})
    assert db.rows("02_drop_unique_constraint", "users") == [{"id": 1, "name": "anonymous"}]


def default_after_complete(db: DB) -> None:
    db.delete("02_drop_unique_constraint", "users", {"id": 1})
    db.insert("02_drop_unique_constraint", "users", {"id": 2})
    assert db.rows("02_drop_unique_constraint", "users") == [{"id": 2, "name": "anonymous"}]


DEPARTMENTS = create_table("departments", SERIAL_ID, "{name: name, type: text, nullable: false}",
                           migration="01_add_departments_table")
EMPLOYEES = ("02_add_employees_table", """
operations:
  - create_table:
      name: employees
      columns:
        - {name: id, type: serial, pk: true}
        - {name: name, type: text, nullable: false}
        - name: department_id
          type: integer
          unique: true
          references: {name: fk_employee_department, table: departments, column: id}
""")
DROP_DEPARTMENT_KEY = ("03_drop_unique_constraint", """
operations:
  - drop_constraint:
      {table: employees, name: employees_department_id_key, up: department_id, down: department_id}
""")


def fk_on_duplicate(db: DB) -> None:
    """pgroll's ValidatedForeignKeyMustExist on DuplicationName(fk), neutrally: a validated foreign key
    other than the original one, on Symphony's stand-in for department_id, to departments."""
    found = db._run(
        "SELECT c.conname, a.attname, c.confrelid::regclass::text, c.convalidated FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
        "WHERE c.conrelid = 'public.employees'::regclass AND c.contype = 'f'")
    assert any(name != "fk_employee_department" and column.startswith("_symphony_") and "department_id" in column
               and target == "departments" and valid for name, column, target, valid in found), found


def fk_kept(db: DB) -> None:
    assert db.validated_foreign_key("employees", "fk_employee_department")


POSTS_UNIQUE_TITLE = posts("{name: title, type: text, nullable: true, unique: true}")
DROP_TITLE_KEY_AFTER_CHECK = ("03_drop_unique_constraint", """
operations:
  - drop_constraint: {table: posts, name: posts_title_key, up: title, down: title}
""")

POSTS_NULLABLE_TITLE = posts("{name: title, type: text, nullable: true}")
SET_UNIQUE = set_unique("posts", "title", "unique_title")
CHECK_THIRD = ("03_add_check_constraint", CHECK_TITLE[1])
DROP_CHECK_FOURTH = ("04_drop_check_constraint", """
operations:
  - drop_constraint: {table: posts, name: check_title_length, up: title, down: title}
""")


keeps_unique_after_start, keeps_unique_after_complete = unique_kept(
    "04_drop_check_constraint", "posts", "title", "unique_title", "post by alice", "post by bob")

POSTS_UNIQUE_NOT_NULL = posts("{name: title, type: text, unique: true, nullable: false}")
DROP_TITLE_KEY = ("02_drop_unique_constraint", """
operations:
  - drop_constraint: {table: posts, name: posts_title_key, up: title, down: title}
""")
POSTS_UNIQUE_COMMENT = posts("{name: title, type: text, unique: true, nullable: false, comment: the title of the post}")


def comment_on_duplicate(db: DB) -> None:
    """ColumnMustHaveComment on TemporaryName(title), neutrally: Symphony's stand-in for title has it."""
    stand_ins = [c for c in db.columns("posts") if c.startswith("_symphony_") and "title" in c]
    assert stand_ins, db.columns("posts")
    assert [db.column_comment("posts", c) for c in stand_ins] == ["the title of the post"] * len(stand_ins)


def comment_kept(db: DB) -> None:
    assert db.column_comment("posts", "title") == "the title of the post"


# --- validation

DOWN = f'"{PAD}"'


def drop_with(fields: str) -> tuple[str, str]:
    return ("03_drop_check_constraint", f"""
operations:
  - drop_constraint: {{{fields}}}
""")


CASES = [
    Case("drop check constraint with default up sql", [POSTS, CHECK, DROP], after_start, cleaned_up,
         after_complete),
    Case("drop check constraint with user-supplied up sql", [POSTS_PLAIN, CHECK_TITLE, DROP_WITH_UP],
         after_start=user_up_after_start),
    Case("drop foreign key constraint", [USERS_POSTS, ADD_FK, DROP_FK], fk_after_start, cleaned_up,
         fk_after_complete),
    Case("drop unique constraint", [USERS_UNIQUE_NAME, DROP_NAME_KEY], unique_after_start, cleaned_up,
         unique_after_complete),
    Case("drop unique constraint from serial column", [USERS_UNIQUE_SERIAL, DROP_SERIAL_KEY], serial_after_start,
         cleaned_up, serial_after_complete),
    Case("dropping a unique constraint preserves the column's default value", [USERS_UNIQUE_DEFAULT, DROP_NAME_KEY],
         after_start=default_after_start, after_complete=default_after_complete),
    Case("dropping a unique constraint preserves a foreign key constraint on the column",
         [DEPARTMENTS, EMPLOYEES, DROP_DEPARTMENT_KEY], after_start=fk_on_duplicate,
         after_complete=fk_kept),
    Case("dropping a unique constraint preserves a check constraint on the column",
         [POSTS_UNIQUE_TITLE, CHECK_TITLE, DROP_TITLE_KEY_AFTER_CHECK],
         after_start=lambda db: db.insert_fails("03_drop_unique_constraint", "posts", {"id": 1, "title": "a"},
                                                CHECK_VIOLATION),
         after_complete=lambda db: db.insert_fails("03_drop_unique_constraint", "posts", {"id": 2, "title": "b"},
                                                   CHECK_VIOLATION)),
    Case("dropping a check constraint preserves a unique constraint on the column",
         [POSTS_NULLABLE_TITLE, SET_UNIQUE, CHECK_THIRD, DROP_CHECK_FOURTH],
         after_start=keeps_unique_after_start, after_complete=keeps_unique_after_complete),
    Case("dropping a unique constraint preserves column not null", [POSTS_UNIQUE_NOT_NULL, DROP_TITLE_KEY],
         after_start=lambda db: db.insert_fails("02_drop_unique_constraint", "posts", {"id": 1},
                                                NOT_NULL_VIOLATION),
         after_complete=lambda db: db.insert_fails("02_drop_unique_constraint", "posts", {"id": 2},
                                                   NOT_NULL_VIOLATION)),
    Case("dropping a unique constraint preserves any comment on the column", [POSTS_UNIQUE_COMMENT, DROP_TITLE_KEY],
         after_start=comment_on_duplicate,
         after_complete=comment_kept),
    Case("table must exist",
         [POSTS_PLAIN, CHECK_TITLE, drop_with(f"table: doesntexist, name: check_title_length, up: title, down: {DOWN}")],
         start_error="table 'doesntexist' does not exist"),
    Case("constraint must exist",
         [POSTS_PLAIN, CHECK_TITLE, drop_with(f"table: posts, name: doesntexist, up: title, down: {DOWN}")],
         start_error="constraint 'doesntexist' does not exist"),
    Case("name is mandatory", [POSTS_PLAIN, CHECK_TITLE, drop_with(f"table: posts, up: title, down: {DOWN}")],
         start_error="drop_constraint.name: required field missing"),
    Case("down SQL is mandatory",
         [POSTS_PLAIN, CHECK_TITLE, drop_with("table: posts, name: check_title_length, up: title")],
         start_error="drop_constraint.down: required field missing"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_pgroll_drop_constraint(dsn: str, case: Case) -> None:
    execute(dsn, case)
