"""FastAPI dependencies shared by every native endpoint: the session, the container and the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from herald import ratelimit
from herald.accounts.service import AccountService, Authenticated
from herald.actor import Actor
from herald.container import Container
from herald.errors import Unauthorized


def get_container(request: Request) -> Container:
    """The process's container, put on the app by the composition root."""
    container: Container = request.app.state.container
    return container


def db_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the endpoint returns, rolled back when it raises.

    Runs with scope="function" so the commit happens before the response is sent (read-your-writes).
    """
    with get_container(request).transaction() as session:
        yield session


SessionDep = Annotated[Session, Depends(db_session, scope="function")]
ContainerDep = Annotated[Container, Depends(get_container)]

_bearer = HTTPBearer(auto_error=False, description="The api_token printed by `herald account create`.")


def client_ip(request: Request) -> str | None:
    """The caller's IP as the ledger records it."""
    return request.client.host if request.client else None


def current_caller(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Authenticated:
    """The authenticated caller of a native endpoint; 401 problem otherwise."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("Missing bearer token")
    container = get_container(request)
    auth = AccountService(session, container.cipher).authenticate_token(credentials.credentials)
    request.state.credential_id = auth.credential.id
    ratelimit.check(container, auth.credential.id)
    return auth


CallerDep = Annotated[Authenticated, Depends(current_caller)]


def actor_for(request: Request, auth: Authenticated, source: str) -> Actor:
    """The Actor recorded in the ledger for a request by this caller through `source`."""
    return Actor(
        account_id=auth.account.id,
        source=source,
        user_id=auth.user.id if auth.user else None,
        credential_id=auth.credential.id,
        is_admin=auth.is_admin,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )


def current_actor(request: Request, auth: CallerDep) -> Actor:
    """The native API caller as an Actor."""
    return actor_for(request, auth, "api")


ActorDep = Annotated[Actor, Depends(current_actor)]
