"""Per-credential rate limits: off by default, and when set every edge refuses in its own format."""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from herald.app import create_app
from herald.container import Container
from herald.errors import RateLimited
from herald.ratelimit import RateLimiter
from tests.conftest import auth, make_account
from tests.security import wire

LIMIT = 3


@pytest.fixture
def limited(container: Container) -> Iterator[TestClient]:
    """The app with HERALD_RATE_LIMIT_PER_MINUTE=3 on the test's (clean, migrated) database."""
    settings = container.settings.model_copy(update={"rate_limit_per_minute": LIMIT})
    limited_container = Container.build(settings)
    with TestClient(create_app(limited_container), base_url="http://herald.test") as c:
        yield c
    limited_container.engine.dispose()


def test_limiter_slides_its_window_and_says_when_to_retry() -> None:
    now = [1000.0]
    limiter = RateLimiter(2, window=60, clock=lambda: now[0])
    limiter.hit(1)
    now[0] += 10
    limiter.hit(1)
    limiter.hit(2)  # another credential has its own window
    with pytest.raises(RateLimited) as refused:
        limiter.hit(1)
    assert refused.value.retry_after == pytest.approx(50)
    now[0] += 50.001
    limiter.hit(1)  # the first hit left the window
    with pytest.raises(RateLimited):
        limiter.hit(1)


def test_limiter_with_zero_limit_never_refuses() -> None:
    limiter = RateLimiter(0)
    for _ in range(1000):
        limiter.hit(1)


def test_off_by_default(client: TestClient, account: dict[str, Any]) -> None:
    for _ in range(30):
        assert client.get("/api/v1/lists", headers=auth(account)).status_code == 200


def test_native_api_answers_429_problem_with_retry_after(limited: TestClient, container: Container) -> None:
    a, b = make_account(container, "a"), make_account(container, "b")
    for _ in range(LIMIT):
        assert limited.get("/api/v1/lists", headers=auth(a)).status_code == 200
    r = limited.post("/api/v1/lists", json={"name": "refused"}, headers=auth(a))
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 61
    # Another credential is not affected, and the refused create created nothing.
    assert limited.get("/api/v1/lists", headers=auth(b)).status_code == 200
    with container.transaction() as s:
        from sqlalchemy import text

        assert s.execute(text("SELECT count(*) FROM lists")).scalar_one() == 0


def test_wrong_credentials_are_not_counted_against_the_real_one(limited: TestClient, container: Container) -> None:
    a = make_account(container, "a")
    for _ in range(10):
        assert limited.get("/api/v1/lists", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert limited.get("/api/v1/lists", headers=auth(a)).status_code == 200


def test_allclients_answers_its_error_shape(limited: TestClient, container: Container) -> None:
    a = make_account(container, "a")
    for _ in range(LIMIT):
        r = wire.allclients(limited, a, wire.ALLCLIENTS_ADD, email=f"x{_}@example.com")
        assert r.json()["message"] == "Success"
    before = wire.row_counts(container)
    r = wire.allclients(limited, a, wire.ALLCLIENTS_ADD, email="late@example.com")
    assert r.status_code == 200
    assert r.json() == {"error": "API Rate Limit Exceeded"}
    assert wire.row_counts(container) == before


def test_mailkit_json_and_xmlrpc_answer_their_error_shape(limited: TestClient, container: Container) -> None:
    a = make_account(container, "a")
    for _ in range(LIMIT):
        assert wire.mailkit_json(limited, a, wire.GETSTATUS, email="x@example.com").json()["error_status"] == 1
    r = wire.mailkit_json(limited, a, wire.GETSTATUS, email="x@example.com")
    assert r.status_code == 200
    assert r.json() == {"error_status": 1, "error": "Too many requests"}
    assert wire.mailkit_rpc(limited, a, wire.GETSTATUS, "x@example.com") == "Too many requests"


def test_skycore_answers_e113(limited: TestClient, container: Container) -> None:
    a = make_account(container, "a")
    for _ in range(LIMIT):
        assert "E912" in wire.skycore(limited, a, "unsubscribeEmail", 99, "x@example.com").text
    r = wire.skycore(limited, a, "unsubscribeEmail", 99, "x@example.com")
    assert r.status_code == 200
    assert "<ERRORCODE>E113</ERRORCODE>" in r.text
    assert "Set throughput exceeded for this API action. API call rejected." in r.text


def test_alls_answers_laravel_throttle(limited: TestClient, container: Container) -> None:
    a = make_account(container, "a")
    for _ in range(LIMIT):
        assert wire.alls(limited, a, "GET", "/api/sender/list").json()["status"] == "success"
    r = wire.alls(limited, a, "GET", "/api/sender/list")
    assert r.status_code == 429
    assert r.json() == {"status": "failed", "errors": "Too Many Attempts."}
    assert int(r.headers["Retry-After"]) >= 1


def test_signupto_answers_its_envelope_with_429(limited: TestClient, container: Container) -> None:
    a = make_account(container, "a")
    sut = wire.Sut(limited, a)
    assert sut.call("POST", "list", {"name": "first"}).status_code == 202
    for _ in range(LIMIT - 1):
        assert sut.call("GET", "list").status_code == 200
    before = wire.row_counts(container)
    r = sut.call("POST", "list", {"name": "refused"})
    assert r.status_code == 429
    assert r.json()["status"] == "error" and r.json()["response"]["code"] == 429
    assert int(r.headers["Retry-After"]) >= 1
    after = wire.row_counts(container)
    # Only the request's nonce is spent (replay protection); nothing else changed.
    assert {k: v for k, v in after.items() if k != "used_nonces"} == {
        k: v for k, v in before.items() if k != "used_nonces"
    }


def test_xmlrpc_fault_free(limited: TestClient, container: Container) -> None:
    """The limit answer over XML-RPC is a plain value, never a fault (Mailkit never faults)."""
    a = make_account(container, "a")
    for _ in range(LIMIT + 1):
        value = wire.mailkit_rpc(limited, a, wire.GETSTATUS, "x@example.com")
        assert not isinstance(value, xmlrpc.client.Fault)
