"""Composition root: settings → container → ASGI app. Nothing happens at import time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import import_module

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from herald import __version__
from herald.api import problems
from herald.api.limits import BodyLimitMiddleware
from herald.container import Container

# Native API routers, mounted under /api/v1 (one per domain package).
NATIVE_ROUTERS = (
    "herald.contacts.endpoints",
    "herald.lists.endpoints",
    "herald.templates.endpoints",
    "herald.consent.endpoints",
    "herald.sends.endpoints",
    "herald.optin.endpoints",
    "herald.webhooks.endpoints",
    "herald.inbound.endpoints",
    "herald.consent.privacy_endpoints",
)
# Routers served at the root: vendor dialects at their vendors' paths, public pages, the admin UI.
ROOT_ROUTERS = (
    "herald.dialects.allclients",
    "herald.dialects.mailkit",
    "herald.dialects.skycore",
    "herald.dialects.alls",
    "herald.dialects.signupto",
    "herald.public.endpoints",
    "herald.public.privacy",
    "herald.optin.public",
    "herald.inbound.http",
    "herald.ui.endpoints",
)


def _router(module: str) -> APIRouter:
    router: APIRouter = import_module(module).router
    return router


class PlainRoutes:
    """ASGI middleware: a request for one of the dialects' plain Starlette routes goes straight to that route.

    Mailkit's two endpoints are plain routes (they take the bare request and answer errors as data), yet
    FastAPI's stack still ran in front of them: its exception and exit-stack middlewares, and matching the path
    against every included router in turn, ≈ 40 % of a getstatus call in-process (≈ 245 of 625 µs, measured
    by calling the ASGI app directly). Only exact paths of routes without path parameters are taken, and only
    for a method the route allows; everything else (a 405, a 404) goes through the app as before. This
    middleware sits inside FastAPI's ServerErrorMiddleware, so an unexpected error is still a logged 500.
    """

    def __init__(self, app: ASGIApp, routes: dict[str, Route]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self.routes.get(scope["path"])
            if route is not None and route.methods is not None and scope["method"] in route.methods:
                await route.handle(scope, receive, send)
                return
        await self.app(scope, receive, send)


def plain_routes(routers: list[APIRouter]) -> dict[str, Route]:
    """The routers' plain Starlette routes without path parameters, by path."""
    return {
        route.path: route
        for router in routers
        for route in router.routes
        if isinstance(route, Route) and not isinstance(route, APIRoute) and not route.param_convertors
    }


def create_native_api(container: Container) -> FastAPI:
    """The /api/v1 application with its own OpenAPI document and problem+json errors."""
    api = FastAPI(
        title="Herald native API",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        description="Consent-first email marketing. Authenticate with `Authorization: Bearer <api_token>`.",
    )
    api.state.container = container
    problems.install(api)
    for module in NATIVE_ROUTERS:
        api.include_router(_router(module))
    api.add_middleware(BodyLimitMiddleware, limit=container.settings.max_body_bytes)
    return api


def create_app(container: Container | None = None, *, run_worker: bool = False) -> FastAPI:
    """The whole Herald ASGI app: native API, dialects, public pages and UI (and the worker, if asked)."""
    container = container or Container.build()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not run_worker:
            yield
            return
        from herald.worker import Worker

        worker = Worker(container)
        container.extras["worker"] = worker
        task = asyncio.create_task(worker.run())
        try:
            yield
        finally:
            worker.stop()
            await task

    app = FastAPI(
        title="Herald", version=__version__, openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan
    )
    app.state.container = container
    routers = [_router(module) for module in ROOT_ROUTERS]
    for router in routers:
        app.include_router(router)
    app.add_middleware(PlainRoutes, routes=plain_routes(routers))
    app.mount("/api/v1", create_native_api(container))
    problems.install_prefix_not_found(app, "/api/v1")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    return app
