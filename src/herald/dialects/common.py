"""Plumbing shared by the vendor dialects: size-limited bodies, form parsing, safe XML in and out.

Dialect routes are on the root app, outside the native API's body-limit middleware, so each reads its
body through `read_body` and answers an oversized one in its vendor's own error format.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import Message

from herald.accounts.service import Authenticated
from herald.actor import Actor
from herald.api.deps import actor_for
from herald.container import Container

T = TypeVar("T")


class BodyTooLarge(Exception):
    """The request body is larger than settings.max_body_bytes."""


class MalformedBody(Exception):
    """The body could not be parsed (bad XML, bad multipart, bad JSON)."""


def container_of(request: Request) -> Container:
    """The process's container (dialect routes live on the root app)."""
    container: Container = request.app.state.container
    return container


async def read_body(request: Request) -> bytes:
    """The whole body, refusing (BodyTooLarge) as soon as it passes the configured limit."""
    limit = container_of(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def multipart_items(request: Request, body: bytes) -> list[tuple[str, str]]:
    """The text fields of an already-read multipart body, in order (files ignored)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form()
    except Exception as exc:  # any multipart parser failure is a malformed body to the client
        raise MalformedBody(str(exc)) from exc
    items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    await form.close()
    return items


async def parse_form(request: Request, body: bytes) -> dict[str, str]:
    """Form fields of a urlencoded or multipart body (files ignored); the first value of a repeated key wins."""
    ctype = request.headers.get("content-type", "").lower()
    fields: dict[str, str] = {}
    if ctype.startswith("multipart/form-data"):
        for key, value in await multipart_items(request, body):
            fields.setdefault(key, value)
        return fields
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    for key, value in parse_qsl(text, keep_blank_values=True):
        fields.setdefault(key, value)
    return fields


def query_fields(request: Request) -> dict[str, str]:
    """Query-string parameters, first value of each key."""
    fields: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        fields.setdefault(key, value)
    return fields


def dialect_actor(request: Request, auth: Authenticated, source: str) -> Actor:
    """The Actor a dialect call is recorded under in the ledger."""
    return actor_for(request, auth, source)


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking database work off the event loop."""
    return await run_in_threadpool(fn, *args)


# -- XML ----------------------------------------------------------------------------------------
def parse_xml(data: bytes | str) -> ET.Element:
    """Parse untrusted XML with DTDs, entities and external references refused (MalformedBody otherwise)."""
    try:
        element: ET.Element = safe_fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise MalformedBody(f"forbidden XML construct ({type(exc).__name__})") from exc
    except ET.ParseError as exc:
        raise MalformedBody(str(exc)) from exc
    return element


def build_element(tag: str, content: Mapping[str, Any] | str | int | None) -> ET.Element:
    """An element from a string or a (nested) mapping of child tags, in mapping order."""
    element = ET.Element(tag)
    if isinstance(content, Mapping):
        for key, value in content.items():
            element.append(build_element(key, value))
    elif content is not None:
        element.text = str(content)
    return element


def xml_document(root: ET.Element, *, declaration: str | None = '<?xml version="1.0"?>', indent: str = "    ") -> bytes:
    """Serialise an element tree with the vendor's XML declaration (if any), indented as their samples are."""
    if indent:
        ET.indent(root, space=indent)
    head = declaration + "\n" if declaration else ""
    return (head + ET.tostring(root, encoding="unicode") + "\n").encode("utf-8")
