"""AllsTechnology request bodies: multipart, urlencoded or JSON, with PHP-style arrays, and Laravel-style checks.

Clients send arrays as `recipient_id[0]=…&recipient_id[1]=…`, `recipient_id[]=…`, repeated keys, or JSON
lists; all of them read the same here. The vendor is a Laravel application, so field errors are worded
as Laravel's validator words them ("The single send name field is required.").
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from herald.dialects.common import MalformedBody, multipart_items, read_body

_ARRAY_KEY = re.compile(r"^([^\[\]]+)\[(\d*)\]$")


class Fields:
    """The fields of one request: scalars and arrays, query string first, the body overriding it."""

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        self._scalars: dict[str, str] = {}
        self._arrays: dict[str, list[tuple[int, int, str]]] = {}
        self._repeated: dict[str, list[str]] = {}
        for seq, (key, value) in enumerate(items):
            if value is None:
                continue
            match = _ARRAY_KEY.match(key)
            if isinstance(value, list):
                self._arrays[key] = [(i, i, _text(v)) for i, v in enumerate(value) if v is not None]
            elif match:
                index = int(match.group(2)) if match.group(2) else 1 << 30
                self._arrays.setdefault(match.group(1), []).append((index, seq, _text(value)))
            else:
                self._scalars[key] = _text(value)
                self._repeated.setdefault(key, []).append(_text(value))

    def scalar(self, name: str) -> str | None:
        """A trimmed scalar value, None when absent or empty (Laravel turns "" into null)."""
        value = self._scalars.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def has_scalar(self, name: str) -> bool:
        """True when the field was sent as a plain (non-array) value."""
        return name in self._scalars

    def array(self, name: str) -> list[str] | None:
        """An array field's non-empty values in index order; a repeated or single plain key counts too."""
        if name in self._arrays:
            values = [v for _, _, v in sorted(self._arrays[name])]
        elif len(self._repeated.get(name, [])) > 1:
            values = self._repeated[name]
        elif name in self._scalars:
            values = self._scalars[name].split(",")
        else:
            return None
        cleaned = [v.strip() for v in values if v.strip()]
        return cleaned or None

    def is_array(self, name: str) -> bool:
        """True when the field was sent as an array (bracketed keys, repeated keys or a JSON list)."""
        return name in self._arrays or len(self._repeated.get(name, [])) > 1


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


async def read_fields(request: Request) -> Fields:
    """Every field of the request (BodyTooLarge and MalformedBody propagate)."""
    items: list[tuple[str, Any]] = list(request.query_params.multi_items())
    body = await read_body(request)
    ctype = request.headers.get("content-type", "").lower()
    if not body.strip():
        return Fields(items)
    if ctype.startswith("application/json"):
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise MalformedBody(str(exc)) from exc
        if not isinstance(data, dict):
            raise MalformedBody("a JSON body must be an object")
        items.extend(data.items())
    elif ctype.startswith("multipart/form-data"):
        items.extend(await multipart_items(request, body))
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = body.decode("latin-1")
        items.extend(parse_qsl(text, keep_blank_values=True))
    return Fields(items)


# -- Laravel's wording ----------------------------------------------------------------------------
def label(field: str) -> str:
    """How Laravel names a field in messages: snake_case words ("strIds" → "str ids")."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", field).lower()
    return snake.replace("_", " ")


def required(field: str) -> str:
    """Laravel's `required` message."""
    return f"The {label(field)} field is required."


def must_be_integer(field: str) -> str:
    """Laravel's `integer` message."""
    return f"The {label(field)} must be an integer."


def must_be_array(field: str) -> str:
    """Laravel's `array` message."""
    return f"The {label(field)} must be an array."


def must_be_boolean(field: str) -> str:
    """Laravel's `boolean` message."""
    return f"The {label(field)} field must be true or false."


def required_when(field: str, other: str, value: str) -> str:
    """Laravel's `required_if` message."""
    return f"The {label(field)} field is required when {label(other)} is {value}."


def selected_invalid(field: str) -> str:
    """Laravel's `exists` message (an id that names nothing of the account)."""
    return f"The selected {label(field)} is invalid."


def sentence(field: str, reason: str) -> str:
    """Any other field problem, as a sentence naming the field."""
    text = f"The {label(field)} {reason}".rstrip()
    return text if text.endswith(".") else text + "."


BOOLEAN_VALUES = {"0": 0, "1": 1, "false": 0, "true": 1}
