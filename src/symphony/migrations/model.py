"""Migration files, in pgroll's open format: one migration per YAML or JSON file, named after it.

    operations:
      - rename_column: {table: readings, from: temp, to: temp_c}
      - add_column:
          table: readings
          up: temp_c * 9 / 5 + 32
          column: {name: temp_f, type: real, nullable: true}

Every file is checked against the format before anything runs; a problem is one SpecError naming
the file and the field (`operations.1.add_column.column.type`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from symphony.errors import SpecError


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _identifier(name: str) -> str:
    """PostgreSQL cuts a longer name to 63 bytes without a word; refuse it instead, as pgroll does."""
    if len(name.encode()) > 63:
        raise ValueError(f"'{name[:20]}...' is {len(name.encode())} bytes long: PostgreSQL names are at most 63 "
                         "bytes (a longer one would be cut silently); shorten it")
    return name


Name = Annotated[str, AfterValidator(_identifier)]
OnDelete = Annotated[Literal["NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"], BeforeValidator(_upper)]
MatchType = Literal["SIMPLE", "FULL", "PARTIAL"]
_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Check(BaseModel):
    model_config = _STRICT
    name: Name
    constraint: str
    no_inherit: bool = False


class Unique(BaseModel):
    model_config = _STRICT
    name: Name


class Reference(BaseModel):
    model_config = _STRICT
    name: Name
    table: str
    column: str
    on_delete: OnDelete = "NO ACTION"
    on_update: OnDelete = "NO ACTION"
    match_type: MatchType = "SIMPLE"
    deferrable: bool = False
    initially_deferred: bool = False


class Identity(BaseModel):
    model_config = _STRICT
    user_specified_values: Literal["ALWAYS", "BY DEFAULT"] = "BY DEFAULT"
    sequence_options: str = ""


class Generated(BaseModel):
    model_config = _STRICT
    expression: str = ""
    identity: Identity | None = None


class Column(BaseModel):
    """A column. As in pgroll's format, a column is NOT NULL unless it says `nullable: true`."""

    model_config = _STRICT
    name: Name
    type: str
    nullable: bool = False
    generated: Generated | None = None
    pk: bool = False
    unique: bool = False
    default: str | None = None
    check: Check | None = None
    references: Reference | None = None
    comment: str | None = None


class MultiReference(BaseModel):
    model_config = _STRICT
    table: str
    columns: list[str]
    on_delete: OnDelete = "NO ACTION"
    on_update: OnDelete = "NO ACTION"
    match_type: MatchType = "SIMPLE"
    on_delete_set_columns: list[str] = Field(default_factory=list)


class IndexParameters(BaseModel):
    model_config = _STRICT
    tablespace: str = ""
    storage_parameters: str = ""
    include_columns: list[str] = Field(default_factory=list)


class Exclude(BaseModel):
    model_config = _STRICT
    index_method: str = ""
    elements: str = ""
    predicate: str = ""


class TableConstraint(BaseModel):
    model_config = _STRICT
    name: Name
    type: Literal["unique", "check", "primary_key", "foreign_key", "exclude"]
    columns: list[str] = Field(default_factory=list)
    check: str = ""
    references: MultiReference | None = None
    exclude: Exclude | None = None
    deferrable: bool = False
    initially_deferred: bool = False
    nulls_not_distinct: bool = False
    no_inherit: bool = False
    index_parameters: IndexParameters | None = None

    @model_validator(mode="after")
    def _complete(self) -> TableConstraint:
        if self.type in ("unique", "primary_key", "foreign_key") and not self.columns:
            raise ValueError(f"a {self.type} constraint needs 'columns' (the columns it covers)")
        if self.type == "check" and not self.check.strip():
            raise ValueError("a check constraint needs 'check' (its expression)")
        if self.type == "foreign_key" and self.references is None:
            raise ValueError("a foreign_key constraint needs 'references'")
        if self.type == "exclude" and self.exclude is None:
            raise ValueError("an exclude constraint needs 'exclude'")
        return self


class OpClass(BaseModel):
    model_config = _STRICT
    name: str = ""
    params: list[str] = Field(default_factory=list)


class IndexField(BaseModel):
    model_config = _STRICT
    collate: str = ""
    sort: Literal["ASC", "DESC", ""] = ""
    nulls: Literal["FIRST", "LAST"] | None = None
    opclass: OpClass | None = None


class CreateTable(BaseModel):
    model_config = _STRICT
    name: Name
    columns: list[Column] = Field(min_length=1)
    comment: str | None = None
    constraints: list[TableConstraint] = Field(default_factory=list)


class AddColumn(BaseModel):
    model_config = _STRICT
    table: str
    column: Column
    up: str = ""

    @model_validator(mode="after")
    def _fills_not_null(self) -> AddColumn:
        c = self.column
        implicit = c.type.lower() in ("smallserial", "serial", "bigserial") or c.generated is not None
        if not c.nullable and c.default is None and not self.up and not implicit:
            raise ValueError(f"'up' is required for a NOT NULL column without a default: SQL giving "
                             f"{c.name}'s value in existing rows and in rows the old version writes "
                             f"(or give it a default, or nullable: true)")
        return self


class DropColumn(BaseModel):
    model_config = _STRICT
    table: str
    column: str
    down: str = ""


class RenameColumn(BaseModel):
    # _STRICT spelled out: the pydantic mypy plugin reads only a literal ConfigDict, and needs populate_by_name
    # to accept RenameColumn(from_=...)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    table: str
    from_: str = Field(alias="from")
    to: Name


class AlterColumn(BaseModel):
    model_config = _STRICT
    table: str
    column: str
    name: str | None = None
    type: str | None = None
    nullable: bool | None = None
    default: str | None = None
    comment: str | None = None
    check: Check | None = None
    unique: Unique | None = None
    references: Reference | None = None
    up: str = ""
    down: str = ""

    @property
    def changes(self) -> set[str]:
        """The properties this operation changes (beyond a rename)."""
        keys = {"type", "nullable", "default", "comment", "check", "unique", "references"}
        return keys & self.model_fields_set

    @model_validator(mode="after")
    def _changes_something(self) -> AlterColumn:
        if not self.changes and self.name is None:
            raise ValueError("alter_column must change something: name, type, nullable, default, comment, check, "
                             "unique or references")
        if self.name is not None and self.changes:
            raise ValueError("a rename (name) cannot be combined with other changes in one alter_column; "
                             "use two operations")
        # What pgroll requires too: the SQL that gives each version its values where they may differ.
        needs: dict[str, tuple[str, ...]] = {"type": ("up", "down"), "check": ("up", "down"),
                                             "references": ("up", "down")}
        if "nullable" in self.changes:
            needs["nullable"] = ("up",) if self.nullable is False else ("down",)
        for change, fields in needs.items():
            for field in fields:
                if change in self.changes and not getattr(self, field):
                    side = "new column's value from the old one's" if field == "up" else \
                        "old column's value from the new one's"
                    raise ValueError(f"'{field}' is required when alter_column changes {change}: SQL giving the "
                                     f"{side} (e.g. {field}: {self.column})")
        return self


class CreateIndex(BaseModel):
    model_config = _STRICT
    name: Name
    table: str
    columns: list[str] | dict[str, IndexField] = Field(min_length=1)
    unique: bool = False
    method: Literal["btree", "hash", "gist", "spgist", "gin", "brin"] | None = None
    predicate: str | None = None
    storage_parameters: str | None = None


class DropIndex(BaseModel):
    model_config = _STRICT
    name: str


class CreateConstraint(BaseModel):
    model_config = _STRICT
    name: Name
    table: str
    type: Literal["unique", "check", "foreign_key", "primary_key"]
    columns: list[str] = Field(min_length=1)
    check: str | None = None
    references: MultiReference | None = None
    no_inherit: bool = False
    index_parameters: IndexParameters | None = None
    up: dict[str, str] = Field(default_factory=dict)
    down: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _kind(self) -> CreateConstraint:
        if self.type == "check" and not self.check:
            raise ValueError("a check constraint needs 'check' (its expression)")
        if self.type == "foreign_key" and self.references is None:
            raise ValueError("a foreign_key constraint needs 'references'")
        for field in ("up", "down"):
            missing = [c for c in self.columns if c not in getattr(self, field)]
            if missing:
                raise ValueError(f"'{field}' needs an entry for every column of the constraint: {', '.join(missing)} "
                                 f"missing (e.g. {field}: {{{missing[0]}: {missing[0]}}})")
        return self


class DropConstraint(BaseModel):
    model_config = _STRICT
    table: str
    name: str
    up: str = ""
    down: str = Field(min_length=1, description="SQL giving the old version's value from the new one's, as the "
                      "old version still has the constraint")


class DropMultiColumnConstraint(BaseModel):
    model_config = _STRICT
    table: str
    name: str
    up: dict[str, str] = Field(default_factory=dict)
    down: dict[str, str]  # one per column of the constraint: checked against the constraint's columns


class RenameConstraint(BaseModel):
    model_config = _STRICT
    table: str
    from_: str = Field(alias="from")
    to: Name


class RenameTable(BaseModel):
    model_config = _STRICT
    from_: str = Field(alias="from")
    to: Name


class DropTable(BaseModel):
    model_config = _STRICT
    name: str


class ReplicaIdentity(BaseModel):
    model_config = _STRICT
    type: str
    index: str = ""


class SetReplicaIdentity(BaseModel):
    model_config = _STRICT
    table: str
    identity: ReplicaIdentity


class RawSQL(BaseModel):
    model_config = _STRICT
    up: str
    down: str = ""
    on_complete: bool = Field(False, alias="onComplete")

    @model_validator(mode="after")
    def _not_both(self) -> RawSQL:
        if self.on_complete and self.down:
            raise ValueError("'down' cannot be used with 'onComplete'")
        return self


OPERATIONS: dict[str, type[BaseModel]] = {
    "create_table": CreateTable,
    "add_column": AddColumn,
    "drop_column": DropColumn,
    "rename_column": RenameColumn,
    "alter_column": AlterColumn,
    "create_index": CreateIndex,
    "drop_index": DropIndex,
    "create_constraint": CreateConstraint,
    "drop_constraint": DropConstraint,
    "drop_multicolumn_constraint": DropMultiColumnConstraint,
    "rename_constraint": RenameConstraint,
    "rename_table": RenameTable,
    "drop_table": DropTable,
    "set_replica_identity": SetReplicaIdentity,
    "sql": RawSQL,
}


class Operation(BaseModel):
    """One entry of `operations`: exactly one key, the operation's kind."""

    model_config = ConfigDict(frozen=True)
    kind: str
    spec: Annotated[Any, Field(repr=False)]


class Migration(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    file: Path | None = None
    operations: list[Operation]
    version_schema: str | None = None

    @property
    def is_raw_sql_only(self) -> bool:
        return all(op.kind == "sql" for op in self.operations)

    def to_data(self) -> dict[str, Any]:
        """The migration as its file would hold it (what parse_migration reads back)."""
        ops = [{op.kind: op.spec.model_dump(mode="json", by_alias=True, exclude_unset=True)} for op in self.operations]
        data: dict[str, Any] = {"name": self.name, "operations": ops}
        if self.version_schema:
            data["version_schema"] = self.version_schema
        return data


_EXTENSIONS = (".yaml", ".yml", ".json")


def migration_files(folder: Path) -> list[Path]:
    """The migration files of a folder, in file-name order."""
    if not folder.is_dir():
        raise SpecError(f"migrations folder {folder} does not exist", fix="create it, or fix postgres.migrations")
    return sorted(p for p in folder.iterdir() if p.suffix in _EXTENSIONS and p.is_file())


def load_migrations(folder: Path) -> list[Migration]:
    migrations = [load_migration(p) for p in migration_files(folder)]
    seen: dict[str, Path] = {}
    for m in migrations:
        if m.name in seen:
            raise SpecError(f"migration name '{m.name}' is used by {seen[m.name].name} too", file=m.file,
                            fix="give each migration its own file name")
        seen[m.name] = m.file  # type: ignore[assignment]
    return migrations


def load_migration(path: Path) -> Migration:
    """Read and check one migration file. Raises SpecError naming the file and field."""
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read the migration: {str(exc).splitlines()[0]}", file=path,
                        fix="it must be YAML or JSON with an operations list") from None
    except RecursionError:
        raise SpecError("cannot read the migration: nested too deeply", file=path,
                        fix="a migration is a few levels deep; check the brackets") from None
    try:
        return parse_migration(data, path)
    except RecursionError:  # an alias of an enclosing anchor makes the data infinite
        raise SpecError("the migration refers to itself (an alias inside its own anchor) or is nested too deeply",
                        file=path, fix="write the values out") from None


def parse_migration(data: Any, path: Path) -> Migration:
    name = path.stem
    if not isinstance(data, dict):
        raise SpecError("expected a mapping with 'operations'", file=path, fix="operations: [ ... ]")
    unknown = set(data) - {"name", "operations", "version_schema"}
    if unknown:
        raise SpecError(f"unknown key '{sorted(unknown)[0]}'", file=path, key=sorted(unknown)[0],
                        fix="valid keys: operations, version_schema, name")
    ops = data.get("operations")
    if not isinstance(ops, list) or not ops:
        raise SpecError("'operations' must be a non-empty list", file=path, key="operations")
    parsed: list[Operation] = []
    for i, entry in enumerate(ops):
        where = f"operations.{i}"
        if not isinstance(entry, dict) or len(entry) != 1:
            raise SpecError("each operation is a mapping with exactly one key, its kind", file=path, key=where,
                            fix=f"one of: {', '.join(OPERATIONS)}")
        (kind, body), = entry.items()
        model = OPERATIONS.get(kind)
        if model is None:
            import difflib

            close = difflib.get_close_matches(str(kind), OPERATIONS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"one of: {', '.join(OPERATIONS)}"
            raise SpecError(f"unknown operation '{kind}'", file=path, key=where, fix=hint)
        try:
            spec = model.model_validate(body if body is not None else {})
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
            key = f"{where}.{kind}" + (f".{loc}" if loc else "")
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                message = "required field missing"
            elif err["type"] == "extra_forbidden":
                message = "unknown field"
            raise SpecError(message, file=path, key=key) from None
        parsed.append(Operation(kind=kind, spec=spec))
    version_schema = data.get("version_schema")
    if version_schema is not None and not isinstance(version_schema, str):
        raise SpecError("version_schema must be a string", file=path, key="version_schema")
    return Migration(name=str(data.get("name") or name), file=path, operations=parsed,
                     version_schema=version_schema)
