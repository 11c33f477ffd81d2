"""Field rules shared by the API and the import; the fast email check must agree with the full one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.consent.addresses import normalise_email
from herald.contacts.validation import clean_custom_fields, clean_email, clean_value
from herald.errors import Invalid


def _same(raw: str) -> None:
    try:
        expected: str | None = normalise_email(raw)
    except Invalid:
        expected = None
    try:
        got: str | None = clean_email(raw)
    except Invalid:
        got = None
    assert got == expected, raw


TRICKY = [
    " Ann@Example.COM ",
    "a..b@example.com",
    ".a@example.com",
    "a.@example.com",
    "a@-example.com",
    "a@example-.com",
    "a@ex--ample.com",
    "a@xn--bcher-kva.com",
    "a@example.test",
    "a@localhost",
    "a@example.local",
    "a@example.c",
    "a@example.123",
    "a@127.0.0.1",
    "a@[127.0.0.1]",
    "x" * 64 + "@example.com",
    "x" * 65 + "@example.com",
    "a@" + "b" * 63 + ".com",
    "a@" + "b" * 64 + ".com",
    "a@" + ".".join(["b" * 60] * 4) + ".com",
    "a+tag@example.com",
    "a_b-c@sub.example.co.uk",
    "a@b@example.com",
    "",
    "   ",
    "ü@example.com",
]


@pytest.mark.parametrize("raw", TRICKY)
def test_fast_path_agrees_on_tricky_addresses(raw: str) -> None:
    _same(raw)


@settings(max_examples=400, deadline=None)
@given(
    st.text(alphabet="ab.-_+@1Z", min_size=1, max_size=20),
    st.sampled_from(["com", "de", "test", "local", "c", "xn--p1ai", "example"]),
)
def test_fast_path_agrees_on_generated_addresses(local_and_domain: str, tld: str) -> None:
    _same(f"{local_and_domain}.{tld}")


def test_clean_value_rules() -> None:
    assert clean_value("first_name", "  Ann ") == "Ann"
    assert clean_value("first_name", "   ") is None
    assert clean_value("age", "42") == 42 and clean_value("age", 0) == 0 and clean_value("age", "") is None
    assert clean_value("alt_email", " B@Example.com") == "b@example.com"
    for name, raw in [
        ("first_name", "x" * 201),
        ("age", True),
        ("age", "4.5"),
        ("age", 151),
        ("birth_date", "2024-13-01"),
        ("birth_date", "20240101"),
        ("city", 5),
        ("alt_email", "nope"),
    ]:
        with pytest.raises(Invalid) as err:
            clean_value(name, raw)
        assert err.value.field == name


def test_custom_fields_rules() -> None:
    assert clean_custom_fields({" vip ": True, "n": 1.5, "s": "x", "gone": None}) == {
        "vip": True,
        "n": 1.5,
        "s": "x",
        "gone": None,
    }
    for raw, field in [
        ([], "fields"),
        ({"": 1}, "fields"),
        ({"x" * 101: 1}, "fields"),
        ({"a": [1]}, "fields.a"),
        ({"a": float("nan")}, "fields.a"),
        ({"a": "\x00"}, "fields.a"),
        ({str(i): i for i in range(101)}, "fields"),
        ({str(i): "v" * 1000 for i in range(20)}, "fields"),
    ]:
        with pytest.raises(Invalid) as err:
            clean_custom_fields(raw)
        assert err.value.field == field, raw
