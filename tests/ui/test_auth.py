"""Signing in, sessions, signing out and CSRF on the admin UI."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from herald.container import Container
from tests.conftest import make_user
from tests.ui.conftest import PASSWORD, csrf_token, set_password, sign_in


def test_pages_require_sign_in(client: TestClient) -> None:
    response = client.get("/ui/?q=x", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=/ui/%3Fq%3Dx"


def test_root_redirects_to_ui(client: TestClient) -> None:
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui/"


def test_sign_in_with_user_id_sets_a_scoped_http_only_cookie(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    set_password(container, account)
    response = sign_in(client, user=str(account["user_id"]))
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("herald_session="))
    assert "HttpOnly" in cookie and "Path=/ui" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # the test base URL is http
    page = client.get("/ui/")
    assert page.status_code == 200 and "Dashboard" in page.text and "acme" in page.text


def test_sign_in_with_account_and_name(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    set_password(container, account)
    response = sign_in(client, account=str(account["account_id"]), user="acme")
    assert response.status_code == 303
    assert client.get("/ui/").status_code == 200


def test_secure_cookie_when_base_url_is_https(app: Any, container: Container, account: dict[str, Any]) -> None:
    container.settings.base_url = "https://herald.example"
    set_password(container, account)
    with TestClient(app, base_url="https://herald.test") as client:
        response = sign_in(client, user=str(account["user_id"]))
        cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("herald_session="))
        assert "Secure" in cookie
        assert client.get("/ui/").status_code == 200


def test_wrong_password_unknown_user_and_wrong_account_are_refused_alike(
    client: TestClient, container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    set_password(container, account)
    attempts = [
        {"user": str(account["user_id"]), "password": "wrong password"},
        {"user": "999999", "password": PASSWORD},
        {"user": "not-a-number", "password": PASSWORD},
        {"account": str(other_account["account_id"]), "user": "acme", "password": PASSWORD},
        {"account": str(account["account_id"]), "user": "nobody", "password": PASSWORD},
    ]
    for attempt in attempts:
        response = sign_in(client, **attempt)
        assert response.status_code == 401, attempt
        assert "Wrong user or password." in response.text
        assert "herald_session" not in response.headers.get("set-cookie", "")
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_user_without_password_cannot_sign_in(
    client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    user = make_user(container, account["account_id"], "nopass")
    assert sign_in(client, user=str(user["user_id"]), password="").status_code == 401


def test_sign_in_form_needs_its_token(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    set_password(container, account)
    client.get("/ui/login")
    form = {"user": str(account["user_id"]), "password": PASSWORD, "login_token": "forged"}
    response = client.post("/ui/login", data=form, follow_redirects=False)
    assert response.status_code == 403
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_next_goes_back_but_never_off_site(client: TestClient, container: Container, account: dict[str, Any]) -> None:
    set_password(container, account)
    page = client.get("/ui/login?next=/ui/lists")
    assert 'name="next" value="/ui/lists"' in page.text
    page = client.get("/ui/login?next=https://evil.example/")
    assert 'name="next" value="/ui/"' in page.text


def test_tampered_cookie_is_not_a_session(ui_client: TestClient) -> None:
    value = ui_client.cookies.get("herald_session", path="/ui")
    assert value
    ui_client.cookies.clear()
    ui_client.cookies.set("herald_session", value[:-2] + "xx", domain="herald.test", path="/ui")
    assert ui_client.get("/ui/", follow_redirects=False).status_code == 303


def test_changing_the_password_ends_older_sessions(
    ui_client: TestClient, container: Container, account: dict[str, Any]
) -> None:
    assert ui_client.get("/ui/").status_code == 200
    set_password(container, account, "a brand new password")
    assert ui_client.get("/ui/", follow_redirects=False).status_code == 303


def test_logout_needs_csrf_and_ends_the_session(ui_client: TestClient) -> None:
    refused = ui_client.post("/ui/logout", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert ui_client.get("/ui/").status_code == 200
    token = csrf_token(ui_client)
    response = ui_client.post("/ui/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/ui/login"
    assert ui_client.get("/ui/", follow_redirects=False).status_code == 303
    assert "You are signed out." in ui_client.get("/ui/login").text


def test_csrf_header_is_accepted_for_htmx(ui_client: TestClient) -> None:
    token = csrf_token(ui_client)
    response = ui_client.post(
        "/ui/logout", headers={"X-CSRF-Token": token, "HX-Request": "true"}, follow_redirects=False
    )
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/ui/login"


def test_ui_cookies_never_reach_public_pages_or_apis(ui_client: TestClient, account: dict[str, Any]) -> None:
    response = ui_client.get("/api/v1/lists", headers={"Authorization": f"Bearer {account['api_token']}"})
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert "herald_session" not in str(response.request.headers.get("cookie", ""))


def test_pages_carry_security_headers(ui_client: TestClient) -> None:
    response = ui_client.get("/ui/")
    assert response.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "SAMEORIGIN"


def test_static_files_are_served_and_unknown_ones_are_not(client: TestClient) -> None:
    assert client.get("/ui/static/htmx.min.js").text.startswith("/*! htmx")
    assert client.get("/ui/static/ui.css").headers["content-type"].startswith("text/css")
    assert client.get("/ui/static/chart.umd.min.js").status_code == 200
    assert client.get("/ui/static/../deps.py").status_code == 404
    assert client.get("/ui/static/nope.js").status_code == 404
