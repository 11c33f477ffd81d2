"""`herald contacts import FILE.csv --account ID`: streaming bulk import with a progress bar on stderr."""

from __future__ import annotations

import io
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from herald.accounts.repository import AccountRepository
from herald.actor import Actor
from herald.cli import _migrated
from herald.contacts.importer import (
    BATCH_SIZE,
    BadRow,
    Columns,
    ContactImporter,
    ImportResult,
    RowParser,
    parse_header,
    read_rows,
)
from herald.container import Container
from herald.errors import Invalid

contacts_app = typer.Typer(help="Contacts of an account.", no_args_is_help=True)


def fail(message: str) -> None:
    """Print an error on stderr, unwrapped (paths stay greppable), and exit 1."""
    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the `contacts` commands to the `herald` CLI (once, however often it is called)."""
    if any(group.typer_instance is contacts_app for group in app.registered_groups):
        return
    app.add_typer(contacts_app, name="contacts")


@contacts_app.command("import")
def import_contacts(
    file: Annotated[Path, typer.Argument(help="CSV file; headers name POST /contacts fields, others are custom.")],
    account: Annotated[int, typer.Option("--account", help="Account id.")],
    batch_size: Annotated[int, typer.Option(help="Rows per transaction.", min=1, max=50_000)] = BATCH_SIZE,
) -> None:
    """Import contacts from a CSV file; bad rows are reported with their line number and skipped."""
    console = Console(stderr=True, highlight=False)
    if not file.is_file():
        fail(f"file {file} not found")
    container = _migrated()
    try:
        result = _import(container, account, file, batch_size, console)
    finally:
        container.engine.dispose()
    console.print(f"imported {result.imported}, updated {result.updated}, skipped {result.skipped}", soft_wrap=True)


def _import(container: Container, account: int, file: Path, batch_size: int, console: Console) -> ImportResult:
    actor = Actor(account_id=account, source="cli")
    with container.transaction() as session:
        if AccountRepository(session).get_account(account) is None:
            fail(f"account {account} not found")
        type_ids = ContactImporter(session, actor, hash_key=container.hash_key).contact_type_ids()
    try:
        return _run(container, actor, file, type_ids, batch_size, console)
    except Invalid as exc:
        fail(f"{file}: {exc.reason}")
        raise  # unreachable: fail() exits


def _run(
    container: Container, actor: Actor, file: Path, type_ids: set[int], batch_size: int, console: Console
) -> ImportResult:
    result = ImportResult()
    columns: Columns | None = None

    def parser_for(header: list[str]) -> RowParser:
        nonlocal columns
        columns = parse_header(header)
        return RowParser(columns, actor.account_id, type_ids)

    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    # One batch is written in a worker thread while the next one is parsed: the database wait releases the GIL,
    # so parsing and writing overlap. Batches still commit one at a time, in file order.
    with open(file, "rb") as raw, progress, ThreadPoolExecutor(max_workers=1) as writer:
        task = progress.add_task("import", total=file.stat().st_size)
        # surrogateescape keeps undecodable bytes visible to the row check instead of aborting the file.
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        batch: list[dict[str, Any]] = []
        pending: Future[tuple[int, int]] | None = None
        for row, _line in read_rows(text, parser_for):
            if isinstance(row, BadRow):
                result.skipped += 1
                progress.console.print(f"line {row.line}: {row.reason} (skipped)", markup=False, soft_wrap=True)
                continue
            if len(batch) >= batch_size:
                # A full batch is written only once another row exists, so the file's last batch is always
                # the durable one (see _write).
                _collect(pending, result)
                assert columns is not None  # rows exist only after the header was parsed
                pending = writer.submit(_write, container, actor, batch, columns, durable=False)
                batch = []
                progress.update(task, completed=raw.tell())
            batch.append(row)
        _collect(pending, result)
        if batch:
            assert columns is not None
            _collect(writer.submit(_write, container, actor, batch, columns, durable=True), result)
        progress.update(task, completed=file.stat().st_size)
    return result


def _write(
    container: Container, actor: Actor, batch: list[dict[str, Any]], columns: Columns, *, durable: bool
) -> tuple[int, int]:
    with container.transaction() as session:
        importer = ContactImporter(session, actor, hash_key=container.hash_key)
        if not durable:
            # Intermediate batches need not wait for their own disk flush: the last batch's durable commit
            # flushes every earlier one too, so a finished import is fully on disk.
            importer.defer_flush()
        return importer.write_batch(batch, columns)


def _collect(pending: Future[tuple[int, int]] | None, result: ImportResult) -> None:
    if pending is None:
        return
    created, updated = pending.result()
    result.imported += created
    result.updated += updated
