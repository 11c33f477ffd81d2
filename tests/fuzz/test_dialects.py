"""Every dialect fed malformed and hostile bodies (hypothesis, bounded and derandomized): XML bombs and external
entities, invalid UTF-8, wrong types, missing fields, random bytes. Each answer is the vendor's own error shape
(or its success shape, for the rare generated body that is a valid request), never HTTP 5xx, and a refused
request changes no row of any table."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herald.app import create_app
from herald.container import Container
from tests.security import wire

FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<REQUEST><ACTION>&lol9;</ACTION><methodName>&lol9;</methodName></REQUEST>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<REQUEST><ACTION>unsubscribeEmail</ACTION><EMAIL>&xxe;</EMAIL><CAMPAIGNID>1</CAMPAIGNID></REQUEST>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><methodCall><methodName>x</methodName></methodCall>"""
XMLRPC_BOMB = BILLION_LAUGHS.replace(b"<REQUEST>", b"<methodCall>").replace(b"</REQUEST>", b"</methodCall>")
INVALID_UTF8 = b"\xff\xfe\xfa email=\xc3\x28@example.com&status=\xa0\xa1"
HOSTILE = {
    "billion-laughs": BILLION_LAUGHS,
    "xmlrpc-billion-laughs": XMLRPC_BOMB,
    "external-entity": EXTERNAL_ENTITY,
    "external-dtd": EXTERNAL_DTD,
    "invalid-utf8": INVALID_UTF8,
    "truncated-xml": b"<REQUEST><ACTION>unsubscribeEmail</ACT",
    "truncated-json": b'{"function": "mailkit.email.unsubscribe", "parameters": {',
    "json-array": b"[1, 2, 3]",
    "json-deep": b"[" * 5000 + b"]" * 5000,
    "nul-bytes": b"\x00" * 64,
    "bad-multipart": b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nunterminated',
}
CONTENT_TYPES = [
    "application/json",
    "text/xml",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    "",
]

Send = Callable[[TestClient, dict[str, Any], bytes, str], httpx.Response]


# -- each vendor's answer shape ---------------------------------------------------------------
def allclients_shape(r: httpx.Response) -> bool:
    """AllClients: HTTP 200, <results> (or JSON) with an error or a success message. True when an error."""
    assert r.status_code == 200, r.text
    if r.headers["content-type"].startswith("application/json"):
        body = r.json()
    else:
        root = ET.fromstring(r.content)
        assert root.tag == "results", r.text
        body = {child.tag: child.text for child in root}
    assert isinstance(body, dict) and ("error" in body or body.get("message") == "Success"), r.text
    return "error" in body


def mailkit_json_shape(r: httpx.Response) -> bool:
    """Mailkit JSON: HTTP 200 and an object; errors are {"error_status": 1, "error": text}."""
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, dict), r.text
    if body.get("error_status") == 1:
        assert set(body) == {"error_status", "error"} and isinstance(body["error"], str)
        return True
    assert body.get("error_status") == "0", r.text
    return False


def mailkit_rpc_shape(r: httpx.Response) -> bool:
    """Mailkit XML-RPC: HTTP 200, a methodResponse with one value (never a fault); errors are strings."""
    assert r.status_code == 200, r.text
    (value,), _ = xmlrpc.client.loads(r.content)
    return isinstance(value, str) and value not in ("TRUE", "FALSE")


def skycore_shape(r: httpx.Response) -> bool:
    """Skycore: HTTP 200 and <RESPONSE><STATUS>; failures carry an E-code and info."""
    assert r.status_code == 200, r.text
    root = ET.fromstring(r.content)
    assert root.tag == "RESPONSE", r.text
    status = root.findtext("STATUS")
    if status == "Failure":
        code = root.findtext("ERRORCODE") or ""
        assert code.startswith("E") and code[1:].isdigit() and root.findtext("ERRORINFO"), r.text
        assert code != "E503", r.text  # the catch-all internal error is a bug, not an answer
        return True
    assert status == "Success", r.text
    return False


def alls_shape(r: httpx.Response) -> bool:
    """AllsTechnology: the {"status","message"|"errors"} envelope; 200, or 401/413 for keys and size."""
    assert r.status_code in (200, 401, 413), r.text
    body = r.json()
    assert body["status"] in ("success", "failed"), r.text
    if body["status"] == "failed":
        assert set(body) == {"status", "errors"} and isinstance(body["errors"], str | dict), r.text
        return True
    assert r.status_code == 200
    return False


def signupto_shape(r: httpx.Response) -> bool:
    """Sign-Up.to: the {"status","response"} envelope; an error's HTTP status is its code (4xx)."""
    assert r.status_code < 500, r.text
    body = r.json()
    if body["status"] == "error":
        assert body["response"]["code"] == r.status_code and 400 <= r.status_code < 500, r.text
        assert isinstance(body["response"]["message"], str)
        return True
    assert body["status"] == "ok" and r.status_code in (200, 202), r.text
    return False


# -- the targets ------------------------------------------------------------------------------
def _allclients(path: str) -> Send:
    def send(client: TestClient, creds: dict[str, Any], body: bytes, ctype: str) -> httpx.Response:
        keys = creds["allclients"]
        query = {"accountid": keys["accountid"], "apikey": keys["apikey"]}
        return client.post(path, params=query, content=body, headers={"Content-Type": ctype})

    return send


def _mailkit(path: str) -> Send:
    def send(client: TestClient, _creds: dict[str, Any], body: bytes, ctype: str) -> httpx.Response:
        return client.post(path, content=body, headers={"Content-Type": ctype})

    return send


def _skycore_raw(client: TestClient, _creds: dict[str, Any], body: bytes, ctype: str) -> httpx.Response:
    return client.post(wire.SKYCORE, content=body, headers={"Content-Type": ctype or "text/xml"})


def _skycore_xml_field(client: TestClient, creds: dict[str, Any], body: bytes, _ctype: str) -> httpx.Response:
    text = body.decode("utf-8", "replace")
    return client.post(wire.SKYCORE, data={"xml": text, "api_key": creds["skycore"]["api_key"]})


def _skycore_get(client: TestClient, _creds: dict[str, Any], body: bytes, _ctype: str) -> httpx.Response:
    return client.get(wire.SKYCORE, params={"xml": body.decode("utf-8", "replace")})


def _alls(path: str) -> Send:
    def send(client: TestClient, creds: dict[str, Any], body: bytes, ctype: str) -> httpx.Response:
        return client.post(path, content=body, headers={**wire.alls_keys(creds), "Content-Type": ctype})

    return send


def _signupto(resource: str) -> Send:
    def send(client: TestClient, creds: dict[str, Any], body: bytes, ctype: str) -> httpx.Response:
        return wire.Sut(client, creds).raw("POST", resource, body, ctype)

    return send


@dataclass(frozen=True)
class Target:
    """One endpoint of one dialect, how to post a body to it, and how its vendor answers."""

    send: Send
    shape: Callable[[httpx.Response], bool]
    content_type: str
    # Tables a refused request may still touch on purpose (Sign-Up.to spends the signed request's nonce).
    spent: frozenset[str] = frozenset()


NONCES = frozenset({"used_nonces"})
TARGETS = {
    "allclients-set": Target(_allclients(wire.ALLCLIENTS_SET), allclients_shape, "application/x-www-form-urlencoded"),
    "allclients-add": Target(_allclients(wire.ALLCLIENTS_ADD), allclients_shape, "multipart/form-data; boundary=x"),
    "mailkit-json": Target(_mailkit(wire.MAILKIT_JSON), mailkit_json_shape, "application/json"),
    "mailkit-xmlrpc": Target(_mailkit(wire.MAILKIT_RPC), mailkit_rpc_shape, "text/xml"),
    "skycore-raw-xml": Target(_skycore_raw, skycore_shape, "text/xml"),
    "skycore-xml-field": Target(_skycore_xml_field, skycore_shape, "application/x-www-form-urlencoded"),
    "skycore-get": Target(_skycore_get, skycore_shape, ""),
    "alls-create-multipart": Target(_alls("/api/single/send/create"), alls_shape, "multipart/form-data; boundary=x"),
    "alls-update-urlencoded": Target(_alls("/api/single/send/update"), alls_shape, "application/x-www-form-urlencoded"),
    "alls-bulk-delete-json": Target(_alls("/api/single/send/bulk-delete"), alls_shape, "application/json"),
    "signupto-subscriber": Target(_signupto("subscriber"), signupto_shape, "application/json", NONCES),
    "signupto-subscription": Target(_signupto("subscription"), signupto_shape, "application/json", NONCES),
    "signupto-optin-automation": Target(_signupto("optinAutomation"), signupto_shape, "application/json", NONCES),
    "signupto-email-optin": Target(
        _signupto("emailOptIn"), signupto_shape, "application/x-www-form-urlencoded", NONCES
    ),
}


def _without(counts: dict[str, int], tables: frozenset[str]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if k not in tables}


def exchange(
    container: Container, client: TestClient, creds: dict[str, Any], target: Target, body: bytes, ctype: str
) -> None:
    """Post one body; the answer has the vendor's shape, and an error answer changed nothing."""
    before = wire.row_counts(container)
    r = target.send(client, creds, body, ctype)
    assert r.status_code < 500, r.text
    refused = target.shape(r)
    assert b"root:" not in r.content  # no external entity was ever resolved
    if refused:
        assert _without(wire.row_counts(container), target.spent) == _without(before, target.spent), r.text


# -- strategies ------------------------------------------------------------------------------
FIELD_NAMES = [
    "email", "status", "accountid", "apikey", "response_type", "function", "id", "md5", "parameters", "ID_email",
    "action", "api_key", "campaignid", "utr", "strIds", "recipient_id[0]", "sender_id", "schedule_type",
    "single_send_name", "subject", "preheader", "unsubscribe_group_id", "list_id", "subscriber_id", "message_id",
    "subscription_id", "name", "paused", "confirmed", "timeout", "timeout_days",
]  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=4),
    max_leaves=12,
)
WRONG_TYPED_OBJECTS = st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=10), JSON_VALUES, max_size=8)


@st.composite
def bodies(draw: st.DrawFn, content_type: str) -> tuple[bytes, str]:
    """A body and its content type: random bytes, wrong-typed JSON, broken forms, or hostile XML."""
    kind = draw(st.sampled_from(["bytes", "json", "form", "hostile", "xml"]))
    ctype = draw(st.sampled_from([content_type, content_type, *CONTENT_TYPES]))
    if kind == "bytes":
        return draw(st.binary(max_size=400)), ctype
    if kind == "json":
        return json.dumps(draw(WRONG_TYPED_OBJECTS | JSON_VALUES)).encode(), ctype
    if kind == "form":
        pairs = draw(st.lists(st.tuples(st.sampled_from(FIELD_NAMES), st.binary(max_size=40)), max_size=8))
        return b"&".join(k.encode() + b"=" + v for k, v in pairs), ctype
    if kind == "xml":
        children = draw(st.lists(st.tuples(st.sampled_from(FIELD_NAMES), st.text(max_size=20)), max_size=5))
        inner = "".join(f"<{k.upper()}>{v}</{k.upper()}>" for k, v in children if k.isidentifier())
        return f"<REQUEST>{inner}</REQUEST>".encode("utf-8", "surrogatepass"), ctype
    return HOSTILE[draw(st.sampled_from(sorted(HOSTILE)))], ctype


# -- tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("payload", sorted(HOSTILE))
def test_hostile_bodies_get_the_vendor_error_and_change_nothing(
    client: TestClient, container: Container, account: dict[str, Any], name: str, payload: str
) -> None:
    target = TARGETS[name]
    exchange(container, client, account, target, HOSTILE[payload], target.content_type)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzzed_bodies_never_5xx_and_refusals_change_nothing(
    client: TestClient, container: Container, account: dict[str, Any], name: str
) -> None:
    target = TARGETS[name]

    @FUZZ
    @given(body=bodies(target.content_type))
    def run(body: tuple[bytes, str]) -> None:
        exchange(container, client, account, target, *body)

    run()


# -- oversize bodies: settings.max_body_bytes is the documented limit for every edge --------------
LIMIT = 1024


@pytest.fixture
def small_limit(container: Container) -> Iterator[TestClient]:
    """The app with HERALD_MAX_BODY_BYTES=1024 on the test's database."""
    limited = Container.build(container.settings.model_copy(update={"max_body_bytes": LIMIT}))
    with TestClient(create_app(limited), base_url="http://herald.test") as c:
        yield c
    limited.engine.dispose()


def _chunks(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), 256):
        yield body[start : start + 256]


@pytest.mark.parametrize("streamed", [False, True], ids=["declared", "chunked"])
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_oversize_bodies_get_the_vendor_error_and_change_nothing(
    small_limit: TestClient, container: Container, account: dict[str, Any], name: str, streamed: bool
) -> None:
    target = TARGETS[name]
    if name == "skycore-get":
        pytest.skip("a GET has no body")
    body = b"email=" + b"a" * (LIMIT * 2) + b"@example.com"
    client = small_limit
    if streamed:
        original = client.post

        def post_streamed(url: Any, **kw: Any) -> httpx.Response:
            if isinstance(kw.get("content"), bytes):
                kw["content"] = _chunks(kw["content"])
            return original(url, **kw)

        client = _ClientProxy(small_limit, post_streamed)
    before = wire.row_counts(container)
    r = target.send(client, account, body, target.content_type)  # type: ignore[arg-type]
    assert r.status_code < 500, r.text
    assert target.shape(r) is True
    assert "large" in r.text.lower()
    assert _without(wire.row_counts(container), target.spent) == _without(before, target.spent)


class _ClientProxy:
    """A TestClient whose post() streams its bytes body."""

    def __init__(self, client: TestClient, post: Callable[..., httpx.Response]) -> None:
        self._client = client
        self.post = post

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_native_api_oversize_body_is_a_413_problem(
    small_limit: TestClient, container: Container, account: dict[str, Any]
) -> None:
    before = wire.row_counts(container)
    big = {"name": "x" * (LIMIT * 2)}
    r = small_limit.post("/api/v1/lists", json=big, headers={"Authorization": f"Bearer {account['api_token']}"})
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert wire.row_counts(container) == before
