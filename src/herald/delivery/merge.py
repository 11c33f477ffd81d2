"""Merge tags: `((field))` and `((field|fallback))`, checked at save time, compiled once per send.

The names are the AllsTechnology "Get Dynamic Content" list (DYNAMIC_CONTENT, in its order) plus
`optin_confirm_url`, which only opt-in emails may use (pass `extra=OPTIN_TAGS` when validating those).

A text is split once into literal and tag parts (`compile_text`); filling a recipient is a single join,
so a value that itself contains `((` is never expanded again.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from herald.errors import Invalid

DYNAMIC_CONTENT: tuple[str, ...] = (
    "first_name",
    "last_name",
    "email",
    "alt_email",
    "country",
    "state",
    "city",
    "address_line1",
    "address_line2",
    "state_province_region",
    "postal_code",
    "full_name",
    "father_name",
    "designation",
    "age",
    "company_name",
    "birth_date",
    "join_date",
    "sender_name",
    "sender_address",
    "unsubscribe_preferences",
)
KNOWN_TAGS: frozenset[str] = frozenset(DYNAMIC_CONTENT)
OPTIN_TAGS: frozenset[str] = frozenset({"optin_confirm_url"})

# A tag is an identifier in double parentheses, optionally followed by `|fallback` (one line, no parentheses).
# Anything else between `((` and `))` is literal text, so prose such as "((see below))" stays untouched; a lone
# identifier is a tag, so a typo such as ((frist_name)) is refused at save time rather than mailed as is.
TAG_RE = re.compile(r"\(\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|([^()\r\n]*))?\)\)")


def tags_in(text: str | None) -> list[str]:
    """Every tag name used in a text, in order (duplicates kept)."""
    if not text:
        return []
    return [m.group(1).lower() for m in TAG_RE.finditer(text)]


def validate_tags(text: str | None, *, field: str, extra: frozenset[str] = frozenset()) -> None:
    """Refuse a text using a tag Herald cannot fill, naming the field and the tag (save-time check)."""
    allowed = KNOWN_TAGS | extra
    for name in tags_in(text):
        if name not in allowed:
            raise Invalid(field, f"unknown merge tag (({name}))")


@dataclass(frozen=True, slots=True)
class Compiled:
    """A text split into literals and tags: literals[i] precedes tags[i]; literals has one more item."""

    literals: tuple[str, ...]
    tags: tuple[tuple[str, str], ...]  # (name, fallback); fallback "" when none was given

    @property
    def names(self) -> frozenset[str]:
        """The tag names this text needs."""
        return frozenset(name for name, _ in self.tags)

    def fill(self, values: Mapping[str, str], escape: Callable[[str], str] | None = None) -> str:
        """The text for one recipient; `escape` is applied to values (not to the author's own fallbacks)."""
        if not self.tags:
            return self.literals[0]
        lits = self.literals
        out = [lits[0]]
        append = out.append
        for i, (name, fallback) in enumerate(self.tags):
            value = values.get(name) or ""
            if value:
                append(escape(value) if escape else value)
            else:
                append(fallback)
            append(lits[i + 1])
        return "".join(out)


class CompiledBody:
    """A compiled text as UTF-8 bytes with CRLF line ends: a message body, filled without re-encoding it.

    Filling puts the recipient's values (encoded the same way by the caller, `body_value`) between literals
    encoded and CRLF-normalised once, at compile time, so the bytes are ready for base64 or 7bit as they are.
    The literals become one `%`-format: a fill resolves each distinct (tag, fallback) once and lets bytes
    formatting, in C, place the values; a loop over the body's 50-odd slots cost twice as much.
    """

    __slots__ = ("names", "_choices", "_format", "_pick", "_plain")

    def __init__(self, literals: tuple[bytes, ...], tags: tuple[tuple[str, bytes], ...]) -> None:
        self.names = frozenset(name for name, _ in tags)
        choices = list(dict.fromkeys(tags))  # distinct (name, fallback) pairs, in order
        self._choices: tuple[tuple[str, bytes], ...] = tuple(choices)
        self._format = b"%b".join(literal.replace(b"%", b"%%") for literal in literals)
        self._plain = literals[0] if not tags else None  # a text without tags: nothing to format
        picks = [choices.index(tag) for tag in tags]
        # itemgetter of one index returns the item itself, not a 1-tuple: bytes % needs a tuple either way.
        self._pick: Callable[[list[bytes]], tuple[bytes, ...]] = (
            operator.itemgetter(*picks) if len(picks) > 1 else (lambda values: tuple(values[i] for i in picks))
        )

    def fill(self, values: Mapping[str, bytes]) -> bytes:
        """The body for one recipient; `values` are already escaped where needed and encoded by body_value."""
        if self._plain is not None:
            return self._plain
        resolved = [values.get(name) or fallback for name, fallback in self._choices]
        return self._format % self._pick(resolved)


def body_value(value: str) -> bytes:
    """A merge value as body bytes: UTF-8, every line end CRLF (as the literals around it)."""
    if "\r" in value or "\n" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    return value.encode()


def compile_body(text: str | None, *, numbered: str | None = None) -> CompiledBody:
    """Compile a body text: `compile_text`, with its literals and fallbacks as CRLF UTF-8 bytes.

    Tags `{numbered}1`, `{numbered}2` … become one tag `{numbered}` followed by the literal number, so a
    recipient fills the click links' common prefix once instead of one value per link.
    """
    compiled = compile_text(text)
    literals = [body_value(lit) for lit in compiled.literals]
    tags: list[tuple[str, bytes]] = []
    for i, (name, fallback) in enumerate(compiled.tags):
        if numbered and name.startswith(numbered) and name[len(numbered) :].isdigit():
            literals[i + 1] = name[len(numbered) :].encode() + literals[i + 1]
            name = numbered
        tags.append((name, body_value(fallback)))
    return CompiledBody(tuple(literals), tuple(tags))


def compile_text(text: str | None) -> Compiled:
    """Split a text once so each recipient costs one join; unknown tags are assumed already refused at save."""
    if not text:
        return Compiled(("",), ())
    literals: list[str] = []
    tags: list[tuple[str, str]] = []
    pos = 0
    for m in TAG_RE.finditer(text):
        literals.append(text[pos : m.start()])
        tags.append((m.group(1).lower(), (m.group(2) or "").strip()))
        pos = m.end()
    literals.append(text[pos:])
    return Compiled(tuple(literals), tuple(tags))


def render(text: str | None, values: Mapping[str, str], *, escape: Callable[[str], str] | None = None) -> str:
    """Compile and fill in one go (for one-off messages such as a single opt-in email)."""
    return compile_text(text).fill(values, escape)
