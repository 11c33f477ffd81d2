"""Fixtures for admin UI tests: users with passwords and signed-in TestClients."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from herald.accounts.service import AccountService
from herald.container import Container

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_LOGIN = re.compile(r'name="login_token" value="([^"]+)"')


def set_password(container: Container, creds: dict[str, Any], password: str = PASSWORD) -> None:
    """Give the credentials' user a UI password."""
    with container.transaction() as session:
        AccountService(session, container.cipher).set_password(creds["account_id"], creds["user_id"], password)


def sign_in(client: TestClient, *, user: str, password: str = PASSWORD, account: str = "") -> Any:
    """Post the sign-in form the way a browser does (token from the page and its cookie)."""
    page = client.get("/ui/login")
    match = _LOGIN.search(page.text)
    assert match, page.text
    form = {"account": account, "user": user, "password": password, "login_token": match.group(1)}
    return client.post("/ui/login", data=form, follow_redirects=False)


def csrf_token(client: TestClient, path: str = "/ui/") -> str:
    """The session's CSRF token, as a page embeds it."""
    match = _CSRF.search(client.get(path).text)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def ui_client(client: TestClient, container: Container, account: dict[str, Any]) -> Iterator[TestClient]:
    """A TestClient signed in as the account's admin user."""
    set_password(container, account)
    response = sign_in(client, user=str(account["user_id"]))
    assert response.status_code == 303, response.text
    yield client


@pytest.fixture
def token(ui_client: TestClient) -> str:
    """The signed-in client's CSRF token."""
    return csrf_token(ui_client)


@pytest.fixture
def other_client(app: Any, container: Container, other_account: dict[str, Any]) -> Iterator[TestClient]:
    """A second browser, signed in to the other account."""
    set_password(container, other_account)
    with TestClient(app, base_url="http://herald.test") as c:
        assert sign_in(c, user=str(other_account["user_id"])).status_code == 303
        yield c
