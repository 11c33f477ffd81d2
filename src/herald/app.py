"""Composition root: settings → container → ASGI app. Nothing happens at import time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import import_module

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse

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
    for module in ROOT_ROUTERS:
        app.include_router(_router(module))
    app.mount("/api/v1", create_native_api(container))
    problems.install_prefix_not_found(app, "/api/v1")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    return app
