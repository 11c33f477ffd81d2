"""The segment rules DSL of CONTRACT.md: validated, then compiled to one SQL WHERE clause over contacts.

    {"all": [{"field": "country", "op": "eq", "value": "DE"},
             {"any": [{"field": "age", "op": "gt", "value": 30}, {"field": "fields.vip", "op": "eq", "value": true}]}]}

A node is a group (exactly one key, `all` or `any`, holding a list of nodes) or a leaf
(`field`, `op`, `value`). Fields are the contact columns and custom fields as `fields.<name>`.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Float, FunctionElement, and_, false, literal, not_, or_, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from herald.contacts.models import CONTACT_FIELDS, Contact
from herald.errors import Invalid

OPS = ("eq", "ne", "contains", "in", "gt", "lt", "exists")
INT_FIELDS = frozenset({"age", "contact_type_id"})
STRING_FIELDS = frozenset({"email", *CONTACT_FIELDS} - INT_FIELDS)
FIELDS = STRING_FIELDS | INT_FIELDS
CUSTOM_PREFIX = "fields."
MAX_DEPTH = 8
MAX_LEAVES = 200
MAX_IN_VALUES = 1000
MAX_STRING = 1000
# Quotes, backslashes and control characters cannot appear in a JSON path label on every database.
_CUSTOM_NAME = re.compile(r'[^"\\\x00-\x1f]{1,100}')


# -- validation ---------------------------------------------------------------------------------


def validate_rules(rules: Any) -> None:
    """Refuse a rule tree the compiler cannot turn into SQL, naming the exact offending path."""
    leaves = [0]
    _validate_node(rules, "rules", 1, leaves)


def _validate_node(node: Any, path: str, depth: int, leaves: list[int]) -> None:
    if not isinstance(node, dict):
        raise Invalid(path, "must be an object: a group {all|any: [...]} or a rule {field, op, value}")
    if "all" in node or "any" in node:
        if len(node) != 1:
            raise Invalid(path, "a group has exactly one key, all or any")
        if depth > MAX_DEPTH:
            raise Invalid(path, f"groups nest at most {MAX_DEPTH} deep")
        key = "all" if "all" in node else "any"
        children = node[key]
        if not isinstance(children, list):
            raise Invalid(f"{path}.{key}", "must be a list of rules")
        for i, child in enumerate(children):
            _validate_node(child, f"{path}.{key}[{i}]", depth + 1, leaves)
        return
    leaves[0] += 1
    if leaves[0] > MAX_LEAVES:
        raise Invalid(path, f"at most {MAX_LEAVES} rules per segment")
    _validate_leaf(node, path)


def _validate_leaf(leaf: dict[str, Any], path: str) -> None:
    extra = sorted(set(leaf) - {"field", "op", "value"})
    if extra:
        raise Invalid(f"{path}.{extra[0]}", "unknown key; a rule has field, op and value")
    field = leaf.get("field")
    if not isinstance(field, str) or not field:
        raise Invalid(f"{path}.field", "is required")
    custom = field.startswith(CUSTOM_PREFIX)
    if custom:
        if not _CUSTOM_NAME.fullmatch(field[len(CUSTOM_PREFIX) :]):
            raise Invalid(f"{path}.field", "a custom field name is 1-100 characters without quotes or backslashes")
    elif field not in FIELDS:
        raise Invalid(f"{path}.field", f"unknown field {field!r}; use a contact field or fields.<name>")
    op = leaf.get("op")
    if op not in OPS:
        raise Invalid(f"{path}.op", f"must be one of {', '.join(OPS)}")
    if "value" not in leaf and op != "exists":
        raise Invalid(f"{path}.value", "is required")
    value = leaf.get("value", True)
    vpath = f"{path}.value"
    if op == "exists":
        if not isinstance(value, bool):
            raise Invalid(vpath, "must be true or false")
    elif op == "in":
        if not isinstance(value, list) or not value:
            raise Invalid(vpath, "must be a non-empty list")
        if len(value) > MAX_IN_VALUES:
            raise Invalid(vpath, f"at most {MAX_IN_VALUES} values")
        kinds = {_kind(field, v, f"{vpath}[{i}]") for i, v in enumerate(value)}
        if len(kinds) > 1:
            raise Invalid(vpath, "values must all be of one type")
    elif op == "contains":
        if field in INT_FIELDS:
            raise Invalid(f"{path}.op", f"contains applies to text fields, not {field}")
        if not isinstance(value, str) or not value:
            raise Invalid(vpath, "must be a non-empty string")
        _kind(field, value, vpath)
    else:
        kind = _kind(field, value, vpath)
        if op in ("gt", "lt") and kind == "bool":
            raise Invalid(vpath, f"{op} compares numbers or strings, not booleans")


def _kind(field: str, value: Any, path: str) -> str:
    """The comparison type of a value for a field: 'int', 'number', 'str' or 'bool'."""
    if field in INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(path, f"{field} compares with an integer")
        return "int"
    if field in STRING_FIELDS:
        if not isinstance(value, str):
            raise Invalid(path, f"{field} compares with a string")
        if len(value) > MAX_STRING:
            raise Invalid(path, f"must be at most {MAX_STRING} characters")
        return "str"
    # A custom field holds any JSON scalar.
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise Invalid(path, f"must be at most {MAX_STRING} characters")
        return "str"
    raise Invalid(path, "must be a string, number or boolean")


# -- compilation --------------------------------------------------------------------------------


def compile_rules(rules: dict[str, Any]) -> ColumnElement[bool]:
    """One WHERE clause over `Contact` for a (validated here) rule tree."""
    validate_rules(rules)
    return _compile(rules)


def _compile(node: dict[str, Any]) -> ColumnElement[bool]:
    if "all" in node:
        parts = [_compile(child) for child in node["all"]]
        return and_(*parts) if parts else true()
    if "any" in node:
        parts = [_compile(child) for child in node["any"]]
        return or_(*parts) if parts else false()
    field: str = node["field"]
    op: str = node["op"]
    value: Any = node.get("value", True)
    if field.startswith(CUSTOM_PREFIX):
        return _custom_leaf(field[len(CUSTOM_PREFIX) :], op, value)
    column: ColumnElement[Any] = getattr(Contact, field)
    if field == "email":
        value = [v.strip().lower() for v in value] if isinstance(value, list) else _lower(value)
    return _leaf(column, op, value, text=field in STRING_FIELDS)


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _leaf(column: ColumnElement[Any], op: str, value: Any, *, text: bool) -> ColumnElement[bool]:
    clause: ColumnElement[bool]
    if op == "eq":
        clause = column == value
    elif op == "ne":
        # A contact without the field is "not equal" too, so NULL must not drop it.
        clause = column.is_distinct_from(value)
    elif op == "contains":
        clause = column.icontains(value, autoescape=True)
    elif op == "in":
        clause = column.in_(value)
    elif op == "gt":
        clause = column > value
    elif op == "lt":
        clause = column < value
    else:  # exists
        present = and_(column.is_not(None), column != "") if text else column.is_not(None)
        clause = present if value else not_(present)
    return clause


def _custom_leaf(name: str, op: str, value: Any) -> ColumnElement[bool]:
    as_text: ColumnElement[Any] = Contact.fields[name].as_string()
    if op == "exists":
        return _leaf(as_text, op, value, text=True)
    if op == "contains":
        return _leaf(as_text, op, value, text=True)
    sample = value[0] if op == "in" else value
    if isinstance(sample, bool):
        target: ColumnElement[Any] = JsonBool(Contact.fields, literal(name), literal(_sqlite_path(name)))
    elif isinstance(sample, int | float):
        # Numbers compare numerically; a stored non-number reads as NULL instead of failing the cast.
        target = JsonNumber(Contact.fields, literal(name), literal(_sqlite_path(name)))
        # Bind floats: an IN list of ints would otherwise be typed INTEGER and miss 2.5.
        value = [float(v) for v in value] if op == "in" else float(value)
    else:
        target = as_text
    return _leaf(target, op, value, text=False)


def _sqlite_path(name: str) -> str:
    return f'$."{name}"'


class JsonNumber(FunctionElement[float]):
    """A custom field as a number, NULL when it holds anything else (never a cast error)."""

    type = Float()
    inherit_cache = True
    name = "json_number"


class JsonBool(FunctionElement[bool]):
    """A custom field as a boolean, NULL when it holds anything else."""

    type = Boolean()
    inherit_cache = True
    name = "json_bool"


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> tuple[str, str, str]:
    col, key, path = (compiler.process(c, **kw) for c in element.clauses)
    return col, key, path


@compiles(JsonNumber, "postgresql")
def _json_number_pg(element: JsonNumber, compiler: SQLCompiler, **kw: Any) -> str:
    col, key, _ = _args(element, compiler, **kw)
    return f"(CASE WHEN jsonb_typeof({col} -> {key}) = 'number' THEN ({col} ->> {key})::float8 END)"


@compiles(JsonNumber)
def _json_number_sqlite(element: JsonNumber, compiler: SQLCompiler, **kw: Any) -> str:
    col, _, path = _args(element, compiler, **kw)
    return f"(CASE WHEN json_type({col}, {path}) IN ('integer', 'real') THEN json_extract({col}, {path}) END)"


@compiles(JsonBool, "postgresql")
def _json_bool_pg(element: JsonBool, compiler: SQLCompiler, **kw: Any) -> str:
    col, key, _ = _args(element, compiler, **kw)
    return f"(CASE WHEN jsonb_typeof({col} -> {key}) = 'boolean' THEN ({col} ->> {key})::boolean END)"


@compiles(JsonBool)
def _json_bool_sqlite(element: JsonBool, compiler: SQLCompiler, **kw: Any) -> str:
    col, _, path = _args(element, compiler, **kw)
    return f"(CASE json_type({col}, {path}) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"
