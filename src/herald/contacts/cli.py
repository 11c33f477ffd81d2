"""`herald contacts import FILE.csv --account ID`: streaming bulk import with a progress bar on stderr."""

from __future__ import annotations

import io
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from herald.accounts.repository import AccountRepository
from herald.actor import Actor
from herald.cli import _migrated
from herald.contacts.importer import (
    BATCH_SIZE,
    PG_BATCH_SIZE,
    BadRow,
    Columns,
    ContactImporter,
    ImportResult,
    ImportRow,
    RowParser,
    parse_header,
    read_rows,
)
from herald.container import Container
from herald.errors import HeraldError, Invalid

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
    batch_size: Annotated[
        int | None,
        typer.Option(
            help=f"Rows per transaction (default {PG_BATCH_SIZE:,} on PostgreSQL, {BATCH_SIZE:,} otherwise).",
            min=1,
            max=50_000,
        ),
    ] = None,
) -> None:
    """Import contacts from a CSV file; bad rows are reported with their line number and skipped."""
    console = Console(stderr=True, highlight=False)
    if not file.is_file():
        fail(f"file {file} not found")
    container = _migrated()
    if batch_size is None:
        batch_size = PG_BATCH_SIZE if container.engine.dialect.name == "postgresql" else BATCH_SIZE
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
    except HeraldError as exc:  # e.g. the account or a contact type deleted during the import
        fail(f"{file}: {exc.message}")
        raise


def _run(
    container: Container, actor: Actor, file: Path, type_ids: set[int], batch_size: int, console: Console
) -> ImportResult:
    result = ImportResult()
    writers: _Writers | None = None

    def parser_for(header: list[str]) -> RowParser:
        nonlocal writers
        columns = parse_header(header)
        # PostgreSQL takes batches on several connections at once; SQLite has a single writer anyway.
        count = 2 if container.engine.dialect.name == "postgresql" else 1
        writers = _Writers(container, actor, columns, result, count=count, batch_size=batch_size)
        return RowParser(columns, actor.account_id, type_ids)

    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with open(file, "rb") as raw, progress:
        task = progress.add_task("import", total=file.stat().st_size)
        # surrogateescape keeps undecodable bytes visible to the row check instead of aborting the file.
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        try:
            for n, (row, _line) in enumerate(read_rows(text, parser_for)):
                if isinstance(row, BadRow):
                    result.skipped += 1
                    progress.console.print(f"line {row.line}: {row.reason} (skipped)", markup=False, soft_wrap=True)
                    continue
                assert writers is not None  # rows exist only after the header was parsed
                writers.add(row)
                if n % batch_size == 0:
                    progress.update(task, completed=raw.tell())
        finally:
            if writers is not None:
                writers.finish()
        progress.update(task, completed=file.stat().st_size)
    return result


class _Writers:
    """Batches written in worker threads while the main thread parses (the database wait releases the GIL).

    Rows are partitioned by email, one writer thread per partition, so the same email is always written by
    the same thread in file order (later rows win) and concurrent batches never touch the same contact.
    """

    def __init__(
        self,
        container: Container,
        actor: Actor,
        columns: Columns,
        result: ImportResult,
        *,
        count: int,
        batch_size: int,
    ) -> None:
        self.container, self.actor, self.columns, self.result = container, actor, columns, result
        self.batch_size = batch_size
        self.pools = [ThreadPoolExecutor(max_workers=1) for _ in range(count)]
        self.batches: list[list[ImportRow]] = [[] for _ in range(count)]
        self.pending: list[Future[tuple[int, int]] | None] = [None] * count
        # Each partition tries plain inserts (cheaper) until one of its batches meets an existing email; from
        # then on it upserts. Written only by the partition's own thread.
        self.expect_new = [True] * count

    def add(self, row: ImportRow) -> None:
        """Queue one row; a full batch is written once its partition has another row, so each partition's
        last batch is the durable one (see _write)."""
        part = hash(row[0]) % len(self.pools)
        batch = self.batches[part]
        if len(batch) >= self.batch_size:
            self._collect(part)
            self.pending[part] = self.pools[part].submit(self._write, part, batch, durable=False)
            batch = self.batches[part] = []
        batch.append(row)

    def finish(self) -> None:
        """Write the last batches durably and wait for every writer; re-raises a writer's error."""
        try:
            for part, batch in enumerate(self.batches):
                if batch:
                    self._collect(part)
                    self.pending[part] = self.pools[part].submit(self._write, part, batch, durable=True)
            for part in range(len(self.pools)):
                self._collect(part)
        finally:
            for pool in self.pools:
                pool.shutdown(wait=True)

    def _collect(self, part: int) -> None:
        pending, self.pending[part] = self.pending[part], None
        if pending is not None:
            created, updated = pending.result()
            self.result.imported += created
            self.result.updated += updated

    def _write(self, part: int, batch: list[ImportRow], *, durable: bool) -> tuple[int, int]:
        with self.container.transaction() as session:
            importer = ContactImporter(session, self.actor, hash_key=self.container.hash_key)
            if not durable:
                # Intermediate batches need not wait for their own disk flush: the partition's last batch
                # commits durably afterwards, which flushes every earlier commit too.
                importer.defer_flush()
            written = importer.write_batch(batch, self.columns, expect_new=self.expect_new[part])
        # Only after the commit: a batch that was rolled back decides nothing.
        self.expect_new[part] = self.expect_new[part] and not importer.met_existing
        return written
