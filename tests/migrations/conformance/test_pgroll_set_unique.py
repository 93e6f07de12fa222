"""alter_column with unique, as pgroll's TestSetColumnUnique: only the new version's writes must be unique
while the migration is active; the index behind it carries the constraint's name."""

from __future__ import annotations

import pytest
from _pgroll import DB, UNIQUE_VIOLATION, Case, execute

REVIEWS = ("01_add_table", """
version_schema: add_table
operations:
  - create_table:
      name: reviews
      columns:
        - {name: id, type: serial, pk: true}
        - {name: username, type: text, nullable: false}
        - {name: product, type: text, nullable: false}
        - {name: review, type: text, nullable: false}
""")
UNIQUE = ("02_set_unique", """
version_schema: set_unique
operations:
  - alter_column:
      table: reviews
      column: review
      unique: {name: reviews_review_unique}
      up: review || '-' || (random()*1000000)::integer
""")


def review(name: str, product: str, text: str) -> dict[str, str]:
    return {"username": name, "product": product, "review": text}


def index_named(db: DB, name: str) -> bool:
    return bool(db._run("SELECT 1 FROM pg_indexes WHERE schemaname = 'public' AND indexname = %s", (name,)))


def after_start(db: DB) -> None:
    assert index_named(db, "reviews_review_unique")
    db.insert("add_table", "reviews", review("alice", "apple", "good"))
    db.insert("add_table", "reviews", review("bob", "banana", "good"))  # the old version may repeat it
    db.insert("set_unique", "reviews", review("carl", "carrot", "bad"))
    db.insert_fails("set_unique", "reviews", review("dana", "durian", "bad"), UNIQUE_VIOLATION)


def after_rollback(db: DB) -> None:
    assert not index_named(db, "reviews_review_unique")


def after_complete(db: DB) -> None:
    assert db.constraint_exists("reviews", "reviews_review_unique")
    db.insert("set_unique", "reviews", review("earl", "elderberry", "ok"))
    db.insert_fails("set_unique", "reviews", review("flora", "fig", "ok"), UNIQUE_VIOLATION)


CASES = [Case("set unique with default down sql", [REVIEWS, UNIQUE], after_start, after_rollback, after_complete)]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_pgroll_set_unique(dsn: str, case: Case) -> None:
    execute(dsn, case)
