"""The composed app: plain dialect routes are dispatched directly, and nothing else changes for them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from herald import app as app_module
from herald.dialects import mailkit


def test_the_mailkit_endpoints_are_the_plain_routes_taken_directly() -> None:
    routers = [app_module._router(module) for module in app_module.ROOT_ROUTERS]
    assert sorted(app_module.plain_routes(routers)) == ["/json.fcgi", "/rpc.fcgi"]


def test_other_methods_and_paths_still_go_through_the_app(client: TestClient) -> None:
    assert client.get("/json.fcgi").status_code == 405
    assert client.post("/json.fcgi/extra", json={}).status_code == 404
    r = client.post("/json.fcgi", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["error_status"] == 1  # errors answered as data, as before


def test_an_unexpected_error_in_a_plain_route_is_still_a_500(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_body: bytes) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(mailkit, "_parse_json", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/json.fcgi", json={"function": "mailkit.email.unsubscribe.getstatus"})
    assert r.status_code == 500
