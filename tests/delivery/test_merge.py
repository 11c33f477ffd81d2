from __future__ import annotations

import html

import pytest

from herald.delivery import merge
from herald.errors import Invalid


def test_every_dynamic_content_name_is_accepted() -> None:
    text = " ".join(f"(({name}))" for name in merge.DYNAMIC_CONTENT)
    merge.validate_tags(text, field="html")
    assert len(merge.DYNAMIC_CONTENT) == 21


def test_unknown_tag_names_field_and_tag() -> None:
    with pytest.raises(Invalid) as err:
        merge.validate_tags("Hi ((frist_name))", field="subject")
    assert err.value.field == "subject"
    assert err.value.reason == "unknown merge tag ((frist_name))"


def test_optin_tag_only_with_extra() -> None:
    with pytest.raises(Invalid):
        merge.validate_tags("((optin_confirm_url))", field="html")
    merge.validate_tags("((optin_confirm_url))", field="html", extra=merge.OPTIN_TAGS)


def test_prose_in_double_parentheses_is_literal() -> None:
    merge.validate_tags("((see below)) and (( not a tag ))", field="html")
    assert merge.render("((see below))", {}) == "((see below))"


def test_fill_values_and_fallback() -> None:
    compiled = merge.compile_text("Hello ((first_name|there)), from (( sender_name ))!")
    assert compiled.names == {"first_name", "sender_name"}
    assert compiled.fill({"first_name": "Ann", "sender_name": "Bo"}) == "Hello Ann, from Bo!"
    assert compiled.fill({"first_name": "", "sender_name": "Bo"}) == "Hello there, from Bo!"
    assert compiled.fill({}) == "Hello there, from !"


def test_values_are_never_expanded_again() -> None:
    compiled = merge.compile_text("((first_name)) ((email))")
    assert compiled.fill({"first_name": "((email))", "email": "a@x.org"}) == "((email)) a@x.org"


def test_escape_applies_to_values_only() -> None:
    compiled = merge.compile_text("<p>((first_name|<b>friend</b>))</p>")
    assert compiled.fill({"first_name": "<script>"}, html.escape) == "<p>&lt;script&gt;</p>"
    assert compiled.fill({}, html.escape) == "<p><b>friend</b></p>"


def test_empty_text() -> None:
    assert merge.compile_text(None).fill({"x": "y"}) == ""
    assert merge.tags_in(None) == []
    merge.validate_tags(None, field="text")
