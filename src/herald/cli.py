"""The `herald` command: serve, worker, migrate, accounts, users, contacts import, address privacy."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from herald.container import Container
from herald.errors import HeraldError
from herald.settings import Settings

app = typer.Typer(help="Herald: consent-first email marketing.", no_args_is_help=True, add_completion=False)
account_app = typer.Typer(help="Accounts (tenants).", no_args_is_help=True)
user_app = typer.Typer(help="Users of an account.", no_args_is_help=True)
app.add_typer(account_app, name="account")
app.add_typer(user_app, name="user")

console = Console(stderr=True)


def _container(**overrides: Any) -> Container:
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    return Container.build(settings)


def _migrated(**overrides: Any) -> Container:
    from herald.db.migrate import upgrade

    container = _container(**overrides)
    upgrade(container.engine)
    return container


def fail(message: str, code: int = 1) -> None:
    """Print an error on stderr and exit with `code`."""
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _run_service(fn: Any) -> Any:
    try:
        return fn()
    except HeraldError as exc:
        fail(exc.message)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8025,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Serve only; run workers separately.")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            envvar="HERALD_WEB_WORKERS",
            min=1,
            help="Web server processes (the worker loop then runs once, in the supervising process).",
        ),
    ] = None,
    database_url: Annotated[str | None, typer.Option(envvar="HERALD_DATABASE_URL")] = None,
    smtp_url: Annotated[str | None, typer.Option(envvar="HERALD_SMTP_URL")] = None,
    base_url: Annotated[str | None, typer.Option(envvar="HERALD_BASE_URL")] = None,
) -> None:
    """Migrate the database, then serve API, dialects, UI and public pages (and the worker)."""
    import uvicorn

    from herald.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {"host": host, "port": port, "database_url": database_url, "smtp_url": smtp_url, "base_url": base_url}
    container = _migrated(web_workers=workers, **overrides)
    processes = container.settings.web_workers
    console.print(f"Herald serving on http://{host}:{port}  (API docs: /api/v1/docs)", highlight=False)
    # uvloop and httptools when installed ("auto"); no access log (a line per request costs throughput).
    server_options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,
        "loop": "auto",
        "http": "auto",
        "timeout_graceful_shutdown": 5,
    }
    if processes == 1:
        application = create_app(container, run_worker=not no_worker)
        _freeze_startup_objects()
        uvicorn.run(application, **server_options)
        return
    # Several processes: uvicorn spawns each from an import string, so they read their settings from the
    # environment; the CLI's values go there first. The worker loop must run once, so it runs here, in the
    # supervisor (which otherwise only watches its children), on a thread of its own.
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"HERALD_{name.upper()}"] = str(value)
    stop_worker = None if no_worker else _worker_in_thread(container)
    try:
        uvicorn.run("herald.cli:web_app", factory=True, workers=processes, **server_options)
    finally:
        if stop_worker is not None:
            stop_worker()


def web_app() -> Any:
    """The ASGI app of one `herald serve --workers N` process (settings from the environment, no worker)."""
    from herald.app import create_app

    application = create_app(Container.build())
    _freeze_startup_objects()
    return application


def _freeze_startup_objects() -> None:
    """Move everything built at start-up out of the cyclic collector's reach.

    The app, its routes, SQLAlchemy's metadata and the imported modules are ≈ 140 k long-lived objects; a
    full collection walking them took 220–250 ms (measured in a serving process, load ≈ 5), a stall every
    request in flight waits out. Frozen, a full collection only walks what requests allocate since.
    """
    gc.collect()
    gc.freeze()


def _worker_in_thread(container: Container) -> Any:
    """Run the worker loop on a thread with its own event loop; returns the function that stops it."""
    from herald.worker import Worker

    started = threading.Event()
    running: dict[str, Any] = {}

    async def main() -> None:
        running["loop"], running["worker"] = asyncio.get_running_loop(), Worker(container)
        started.set()
        await running["worker"].run()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="herald-worker", daemon=True)
    thread.start()
    started.wait(timeout=30)

    def stop() -> None:
        running["loop"].call_soon_threadsafe(running["worker"].stop)
        thread.join(timeout=30)

    return stop


@app.command()
def worker(
    database_url: Annotated[str | None, typer.Option(envvar="HERALD_DATABASE_URL")] = None,
    smtp_url: Annotated[str | None, typer.Option(envvar="HERALD_SMTP_URL")] = None,
) -> None:
    """Run the scheduler and delivery pipeline only (any number of them against one PostgreSQL)."""
    from herald.worker import Worker, settle_heap

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    container = _migrated(database_url=database_url, smtp_url=smtp_url)
    w = Worker(container)
    settle_heap()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, w.stop)
        await w.run()

    asyncio.run(main())


@app.command()
def migrate(database_url: Annotated[str | None, typer.Option(envvar="HERALD_DATABASE_URL")] = None) -> None:
    """Apply database migrations."""
    _migrated(database_url=database_url)
    console.print("database is up to date")


def _print_credentials(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
        return
    table = Table(title="Credentials (shown once; store them now)", show_lines=False)
    table.add_column("what")
    table.add_column("value")
    for key, value in data.items():
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                table.add_row(f"{key}.{sub}", str(subvalue))
        else:
            table.add_row(key, str(value))
    Console().print(table)


@account_app.command("create")
def account_create(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create an account with one admin user and print its credentials."""
    from herald.accounts.service import AccountService

    container = _migrated()
    with container.transaction() as session:
        data = _run_service(lambda: AccountService(session, container.cipher).create_account(name))
    _print_credentials(data, as_json)


@user_app.command("create")
def user_create(
    name: str,
    account: Annotated[int, typer.Option("--account", help="Account id.")],
    admin: Annotated[bool, typer.Option("--admin", help="May change anyone's objects.")] = False,
    password: Annotated[
        str | None, typer.Option("--password", help="Password for the admin UI (argon2-hashed).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create a user of an account and print its credentials."""
    from herald.accounts.service import AccountService

    container = _migrated()
    with container.transaction() as session:
        data = _run_service(
            lambda: AccountService(session, container.cipher).create_user(
                account, name, is_admin=admin, password=password
            )
        )
    _print_credentials(data, as_json)


def _register_feature_commands() -> None:
    """Commands contributed by feature packages (contacts import, address privacy)."""
    from importlib import import_module

    for module in ("herald.contacts.cli", "herald.consent.cli"):
        try:
            mod = import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.register(app)


def main() -> None:
    """Console-script entry point."""
    _register_feature_commands()
    app()


def data_path(path: str) -> Path:
    """A path inside the data folder (used by features that keep files)."""
    return Settings().data_dir / path
