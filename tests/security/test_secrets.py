"""Secrets at rest and in logs: no table holds a credential or webhook secret in plain text, and no log record
written while every dialect and the native API authenticate (rightly or wrongly) contains one."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from herald.accounts.service import AccountService
from herald.container import Container
from herald.security import hash_secret
from tests.conftest import auth, make_account, make_user
from tests.consent.privacy_factory import scan
from tests.security import wire

WEBHOOK_SECRET = "whsec-plain-4d1f9a7e2b"
PASSWORD = "correct horse battery staple"


def secrets_of(creds: dict[str, Any]) -> list[str]:
    """Every secret half of an account's credentials (public halves such as accountid are not secrets)."""
    return [
        creds["api_token"],
        creds["allclients"]["apikey"],
        creds["mailkit"]["client_md5"],
        creds["skycore"]["api_key"],
        creds["alls"]["secret_key"],
        creds["signupto"]["api_key"],
    ]


def test_no_table_holds_a_secret_in_plain_text(client: TestClient, container: Container) -> None:
    creds = make_account(container, "acme")
    user = make_user(container, creds["account_id"], "second")
    with container.transaction() as s:
        AccountService(s, container.cipher).set_password(creds["account_id"], user["user_id"], PASSWORD)
    r = client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/h", "secret": WEBHOOK_SECRET}, headers=auth(creds)
    )
    assert r.status_code == 201, r.text
    assert WEBHOOK_SECRET not in r.text  # never echoed back either
    token = wire.Sut(client, creds).call("POST", "token").json()["response"]["data"]["token"]
    needles = [*secrets_of(creds), user["api_token"], user["signupto"]["api_key"], WEBHOOK_SECRET, PASSWORD, token]
    assert scan(container, needles) == []
    # What is stored instead: a SHA-256 of each random secret (argon2 for the password, Fernet where recoverable).
    hits = scan(container, [hash_secret(creds["api_token"]), hash_secret(creds["alls"]["secret_key"])])
    assert sorted(hits) == sorted(
        [
            f"credentials.secret_hash ~ {hash_secret(creds['api_token'])}",
            f"credentials.secret_hash ~ {hash_secret(creds['alls']['secret_key'])}",
        ]
    )
    assert scan(container, ["$argon2id$"]) == ["users.password_hash ~ $argon2id$"]


def _exercise_every_edge(client: TestClient, creds: dict[str, Any], wrong: dict[str, Any]) -> None:
    """One right and one wrong authentication at each edge (the wrong one carries its own marker secrets)."""
    for who in (creds, wrong):
        client.get("/api/v1/lists", headers=auth(who))
        wire.allclients(client, who, wire.ALLCLIENTS_GET, email="x@example.com")
        wire.mailkit_json(client, who, wire.GETSTATUS, email="x@example.com")
        wire.mailkit_rpc(client, who, wire.GETSTATUS, "x@example.com")
        wire.skycore(client, who, "unsubscribeEmail", 1, "x@example.com")
        wire.alls(client, who, "GET", "/api/sender/list")
        wire.Sut(client, who).call("GET", "list")
        client.post("/v1/token", json={"username": str(who["user_id"]), "password": who["signupto"]["api_key"]})
        client.post("/v1/token", json={"username": str(who["user_id"]), "password": PASSWORD})


def test_no_secret_is_ever_logged(client: TestClient, container: Container, caplog: pytest.LogCaptureFixture) -> None:
    creds = make_account(container, "acme")
    marker = "WRONGSECRET"
    wrong = {
        **creds,
        "api_token": f"hrl_{marker}1",
        "allclients": {**creds["allclients"], "apikey": f"{marker}2"},
        "mailkit": {**creds["mailkit"], "client_md5": f"{marker}3"},
        "skycore": {"api_key": f"{marker}4"},
        "alls": {**creds["alls"], "secret_key": f"{marker}5"},
        "signupto": {**creds["signupto"], "api_key": f"{marker}6"},
    }
    with caplog.at_level(logging.DEBUG):
        _exercise_every_edge(client, creds, wrong)
        client.post(
            "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/h", "secret": WEBHOOK_SECRET}, headers=auth(creds)
        )
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    for secret in [*secrets_of(creds), WEBHOOK_SECRET, PASSWORD, marker]:
        assert secret not in logged
