"""The segment DSL: validation paths, and compilation run against real rows on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from herald.accounts.service import AccountService
from herald.contacts.models import Contact, ContactType
from herald.contacts.segments import compile_rules, validate_rules
from herald.container import Container
from herald.errors import Invalid


@pytest.fixture
def people(container: Container) -> dict[str, Any]:
    """Two accounts; the first has five contacts with varied columns and custom fields."""
    with container.transaction() as s:
        svc = AccountService(s, container.cipher)
        acc = svc.create_account("acme")["account_id"]
        other = svc.create_account("other")["account_id"]
        ctype = ContactType(account_id=acc, name="customers")
        s.add(ctype)
        s.flush()
        rows = [
            dict(email="ann@example.com", country="DE", age=31, city="Berlin", fields={"vip": True, "score": 10}),
            dict(email="bob@example.com", country="FR", age=25, city="Paris", fields={"vip": False, "score": 2.5}),
            dict(email="cat@example.com", country="DE", age=None, city="", fields={"score": "n/a", "tier": "gold"}),
            dict(email="dan@example.org", country=None, age=44, city="Bonn 100%", fields={}),
            dict(email="eve@example.org", country="US", age=60, city="Austin", fields={"tier": "Silver"}),
        ]
        for i, row in enumerate(rows):
            s.add(Contact(account_id=acc, contact_type_id=ctype.id if i < 2 else None, **row))
        # Another tenant's contact that matches every rule below must never appear.
        s.add(Contact(account_id=other, email="ann@example.com", country="DE", age=31, fields={"vip": True}))
    return {"account": acc, "ctype": ctype.id}


def _match(container: Container, account: int, rules: dict[str, Any]) -> list[str]:
    with container.sessions() as s:
        stmt = select(Contact.email).where(Contact.account_id == account, compile_rules(rules)).order_by(Contact.email)
        return [e.split("@")[0] for e in s.scalars(stmt)]


CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({"all": [{"field": "country", "op": "eq", "value": "DE"}]}, ["ann", "cat"]),
    ({"all": [{"field": "country", "op": "ne", "value": "DE"}]}, ["bob", "dan", "eve"]),
    ({"all": [{"field": "city", "op": "contains", "value": "ER"}]}, ["ann"]),
    ({"all": [{"field": "city", "op": "contains", "value": "0%"}]}, ["dan"]),
    ({"all": [{"field": "country", "op": "in", "value": ["FR", "US"]}]}, ["bob", "eve"]),
    ({"all": [{"field": "age", "op": "gt", "value": 30}]}, ["ann", "dan", "eve"]),
    ({"all": [{"field": "age", "op": "lt", "value": 30}]}, ["bob"]),
    ({"all": [{"field": "age", "op": "exists", "value": False}]}, ["cat"]),
    ({"all": [{"field": "city", "op": "exists", "value": True}]}, ["ann", "bob", "dan", "eve"]),
    ({"all": [{"field": "email", "op": "contains", "value": ".org"}]}, ["dan", "eve"]),
    ({"all": [{"field": "email", "op": "eq", "value": " ANN@example.com"}]}, ["ann"]),
    (
        {"any": [{"field": "country", "op": "eq", "value": "FR"}, {"field": "age", "op": "gt", "value": 50}]},
        ["bob", "eve"],
    ),
    (
        {
            "all": [
                {"field": "country", "op": "eq", "value": "DE"},
                {
                    "any": [
                        {"field": "age", "op": "gt", "value": 30},
                        {"field": "fields.tier", "op": "eq", "value": "gold"},
                    ]
                },
            ]
        },
        ["ann", "cat"],
    ),
    ({"all": [{"field": "fields.vip", "op": "eq", "value": True}]}, ["ann"]),
    ({"all": [{"field": "fields.vip", "op": "eq", "value": False}]}, ["bob"]),
    ({"all": [{"field": "fields.vip", "op": "exists", "value": True}]}, ["ann", "bob"]),
    ({"all": [{"field": "fields.score", "op": "gt", "value": 5}]}, ["ann"]),
    ({"all": [{"field": "fields.score", "op": "lt", "value": 5}]}, ["bob"]),
    ({"all": [{"field": "fields.score", "op": "in", "value": [10, 2.5]}]}, ["ann", "bob"]),
    ({"all": [{"field": "fields.tier", "op": "contains", "value": "silv"}]}, ["eve"]),
    ({"all": [{"field": "fields.tier", "op": "in", "value": ["gold", "Silver"]}]}, ["cat", "eve"]),
    ({"all": [{"field": "fields.tier", "op": "ne", "value": "gold"}]}, ["ann", "bob", "dan", "eve"]),
    ({"all": [{"field": "fields.missing", "op": "exists", "value": False}]}, ["ann", "bob", "cat", "dan", "eve"]),
    ({"all": []}, ["ann", "bob", "cat", "dan", "eve"]),
    ({"any": []}, []),
]


@pytest.mark.parametrize(("rules", "expected"), CASES)
def test_rules_select_the_right_contacts(
    container: Container, people: dict[str, Any], rules: dict[str, Any], expected: list[str]
) -> None:
    assert _match(container, people["account"], rules) == expected


def test_contact_type_id_rule(container: Container, people: dict[str, Any]) -> None:
    rules = {"all": [{"field": "contact_type_id", "op": "eq", "value": people["ctype"]}]}
    assert _match(container, people["account"], rules) == ["ann", "bob"]


def _nest(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"field": "country", "op": "eq", "value": "DE"}
    for _ in range(depth):
        node = {"all": [node]}
    return node


def test_eight_levels_compile_and_nine_are_refused(container: Container, people: dict[str, Any]) -> None:
    assert _match(container, people["account"], _nest(8)) == ["ann", "cat"]
    with pytest.raises(Invalid) as err:
        validate_rules(_nest(9))
    assert err.value.field == "rules" + ".all[0]" * 8


BAD: list[tuple[Any, str]] = [
    ([], "rules"),
    ({"all": {}}, "rules.all"),
    ({"all": [], "any": []}, "rules"),
    (
        {"all": [{"field": "country", "op": "eq", "value": "DE"}, {"field": "country", "op": "like", "value": "x"}]},
        "rules.all[1].op",
    ),
    ({"all": [{"field": "nope", "op": "eq", "value": "x"}]}, "rules.all[0].field"),
    ({"all": [{"op": "eq", "value": "x"}]}, "rules.all[0].field"),
    ({"any": [{"field": "age", "op": "eq", "value": "31"}]}, "rules.any[0].value"),
    ({"any": [{"field": "age", "op": "gt", "value": True}]}, "rules.any[0].value"),
    ({"any": [{"field": "country", "op": "eq", "value": 3}]}, "rules.any[0].value"),
    ({"any": [{"field": "country", "op": "eq"}]}, "rules.any[0].value"),
    ({"any": [{"field": "country", "op": "in", "value": []}]}, "rules.any[0].value"),
    ({"any": [{"field": "country", "op": "in", "value": ["DE", 3]}]}, "rules.any[0].value[1]"),
    ({"any": [{"field": "fields.x", "op": "in", "value": ["DE", 3]}]}, "rules.any[0].value"),
    ({"any": [{"field": "age", "op": "contains", "value": "3"}]}, "rules.any[0].op"),
    ({"any": [{"field": "country", "op": "exists", "value": "yes"}]}, "rules.any[0].value"),
    ({"any": [{"field": "fields.x", "op": "eq", "value": {"a": 1}}]}, "rules.any[0].value"),
    ({"any": [{"field": "fields.x", "op": "gt", "value": False}]}, "rules.any[0].value"),
    ({"any": [{"field": 'fields.a"b', "op": "eq", "value": "x"}]}, "rules.any[0].field"),
    ({"any": [{"field": "fields.", "op": "eq", "value": "x"}]}, "rules.any[0].field"),
    ({"any": [{"field": "country", "op": "eq", "value": "DE", "extra": 1}]}, "rules.any[0].extra"),
    ({"any": [{"all": [{"any": ["x"]}]}]}, "rules.any[0].all[0].any[0]"),
]


@pytest.mark.parametrize(("rules", "field"), BAD)
def test_bad_rules_name_the_exact_path(rules: Any, field: str) -> None:
    with pytest.raises(Invalid) as err:
        validate_rules(rules)
    assert err.value.field == field
    with pytest.raises(Invalid):
        compile_rules(rules)


def test_too_many_rules_are_refused() -> None:
    rules = {"any": [{"field": "country", "op": "eq", "value": str(i)} for i in range(201)]}
    with pytest.raises(Invalid) as err:
        validate_rules(rules)
    assert err.value.field == "rules.any[200]"
