"""One small client per dialect over a TestClient, so security and fuzz tests speak every wire format alike."""

from __future__ import annotations

import json
import secrets
import xmlrpc.client
from email.utils import formatdate
from time import time
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, literal, select, union_all

from herald.container import Container
from herald.db.models import Base
from herald.dialects.signupto_auth import signature

ALLCLIENTS_SET = "/api/2/SetOptInStatus.aspx"
ALLCLIENTS_GET = "/api/2/GetOptInStatus.aspx"
ALLCLIENTS_ADD = "/api/2/AddContact.aspx"
MAILKIT_JSON = "/json.fcgi"
MAILKIT_RPC = "/rpc.fcgi"
SKYCORE = "/API/wxml/1.3/index.php"
GETSTATUS = "mailkit.email.unsubscribe.getstatus"
UNSUBSCRIBE = "mailkit.email.unsubscribe"


def row_counts(container: Container) -> dict[str, int]:
    """Rows in every table: a refused request must leave all of them as they were."""
    tables = Base.metadata.sorted_tables
    query = union_all(*(select(literal(t.name), func.count()).select_from(t) for t in tables))
    with container.engine.connect() as conn:
        return {str(name): int(count) for name, count in conn.execute(query)}


def allclients(client: TestClient, creds: dict[str, Any], path: str, **fields: str) -> httpx.Response:
    """A form post with the account's AllClients keys, answered as JSON."""
    keys = creds["allclients"]
    return client.post(
        path, data={"accountid": keys["accountid"], "apikey": keys["apikey"], "response_type": "json", **fields}
    )


def mailkit_json(client: TestClient, creds: dict[str, Any], function: str, **parameters: Any) -> httpx.Response:
    """A Mailkit JSON call with the account's client id and md5."""
    keys = creds["mailkit"]
    body = {"function": function, "id": keys["client_id"], "md5": keys["client_md5"], "parameters": parameters}
    return client.post(MAILKIT_JSON, content=json.dumps(body), headers={"Content-Type": "application/json"})


def mailkit_rpc(client: TestClient, creds: dict[str, Any], method: str, *params: Any) -> Any:
    """A Mailkit XML-RPC call; returns the decoded single return value."""
    keys = creds["mailkit"]
    body = xmlrpc.client.dumps((keys["client_id"], keys["client_md5"], *params), methodname=method)
    r = client.post(MAILKIT_RPC, content=body.encode(), headers={"Content-Type": "text/xml"})
    assert r.status_code == 200, r.text
    return xmlrpc.client.loads(r.content)[0][0]


def skycore(client: TestClient, creds: dict[str, Any], action: str, campaign: object, email: str) -> httpx.Response:
    """A Skycore call as lowercase form keys with the account's API key."""
    fields = {"action": action, "api_key": creds["skycore"]["api_key"], "campaignid": str(campaign), "email": email}
    return client.post(SKYCORE, data=fields)


def alls_keys(creds: dict[str, Any]) -> dict[str, str]:
    """The AllsTechnology key headers of an account."""
    return {"PublicKey": creds["alls"]["public_key"], "SecretKey": creds["alls"]["secret_key"]}


def alls(client: TestClient, creds: dict[str, Any], method: str, path: str, **fields: Any) -> httpx.Response:
    """An AllsTechnology call: query string for GET/DELETE, a JSON body otherwise."""
    if method in ("GET", "DELETE"):
        return client.request(method, path, params=fields, headers=alls_keys(creds))
    return client.request(method, path, json=fields, headers=alls_keys(creds))


class Sut:
    """A Sign-Up.to client that signs every request with SuTHash as a real client does."""

    def __init__(self, client: TestClient, creds: dict[str, Any]) -> None:
        self.client = client
        self.cid, self.uid, self.key = (str(creds["signupto"][k]) for k in ("cid", "uid", "api_key"))

    def headers(self, verb: str, path: str) -> dict[str, str]:
        """Signed headers for one request (a fresh nonce each time)."""
        date = formatdate(time(), usegmt=True)
        nonce = secrets.token_hex(20)
        sig = signature(verb, path, date, self.cid, self.uid, nonce, self.key)
        return {
            "Authorization": f'SuTHash signature="{sig}"',
            "Date": date,
            "X-SuT-CID": self.cid,
            "X-SuT-UID": self.uid,
            "X-SuT-Nonce": nonce,
        }

    def call(self, verb: str, resource: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """One signed call: query parameters for GET/DELETE, a JSON body for POST/PUT."""
        path = f"/v1/{resource}"
        headers = self.headers(verb, path)
        if verb in ("GET", "DELETE"):
            return self.client.request(verb, path, params=params or {}, headers=headers)
        body = json.dumps(params or {})
        return self.client.request(verb, path, content=body, headers={**headers, "Content-Type": "application/json"})

    def raw(self, verb: str, resource: str, body: bytes, content_type: str) -> httpx.Response:
        """A signed call with any body bytes."""
        path = f"/v1/{resource}"
        return self.client.request(
            verb, path, content=body, headers={**self.headers(verb, path), "Content-Type": content_type}
        )
