"""Bulk contact import: CSV rows checked one by one, written set-based in batches.

Reading never holds the file in memory; a bad row is reported with its line number and skipped. A row is a
plain list in a fixed column order (email, contact columns, custom fields), cheap to build and to COPY for
files of millions of rows. Each batch is one upsert of contacts (by account and email), one insert of the new
addresses, and one look-up of erased, suppressed addresses, which go through the consent engine so they come
back suppressed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from sqlalchemy.orm import Session

from herald.actor import Actor
from herald.consent.service import ConsentService, email_hash
from herald.contacts.bulk_repository import BulkImportRepository
from herald.contacts.models import CONTACT_FIELDS
from herald.contacts.repository import ContactRepository
from herald.contacts.validation import (
    DATE_FIELDS,
    INT_FIELDS,
    MAX_CUSTOM_NAME,
    MAX_CUSTOM_VALUE,
    MAX_LENGTHS,
    NORMALISED_EMAIL_FIELDS,
    clean_email,
    clean_value,
)
from herald.db.base import utcnow
from herald.errors import Invalid

BATCH_SIZE = 1000
# PostgreSQL's batch is one COPY and one statement: larger batches spread the fixed cost per transaction (temp
# stage, catalog check, locks, commit) over more rows; measured the same CPU per row at 5,000-20,000.
PG_BATCH_SIZE = 10_000
ImportRow = list[Any]
# Profile fields with more than a length rule; the others are checked inline.
SPECIAL_FIELDS = INT_FIELDS | DATE_FIELDS | NORMALISED_EMAIL_FIELDS
_UNDECODABLE = re.compile("[\udc80-\udcff]")


@dataclass
class ImportResult:
    """What an import did."""

    imported: int = 0
    updated: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class Columns:
    """Where each field sits in a row, from the CSV header."""

    width: int
    email: int
    contact_type_id: int | None
    profile: tuple[tuple[int, str], ...]
    custom: tuple[tuple[int, str], ...]

    @property
    def updated_columns(self) -> tuple[str, ...]:
        """The contact columns this file sets, in the order a parsed row carries them after the email
        (plain text columns, then typed ones, then the contact type); an upsert changes only these."""
        plain = [name for _, name in self.profile if name not in SPECIAL_FIELDS]
        special = [name for _, name in self.profile if name in SPECIAL_FIELDS]
        typed = ["contact_type_id"] if self.contact_type_id is not None else []
        return (*plain, *special, *typed)

    @property
    def custom_names(self) -> tuple[str, ...]:
        """The custom field names, in the order a parsed row carries them after the contact columns."""
        return tuple(name for _, name in self.custom)


def parse_header(header: list[str]) -> Columns:
    """Map header names to fields: POST /contacts names (any case), `fields.<name>` or other names = custom."""
    email: int | None = None
    type_index: int | None = None
    profile: list[tuple[int, str]] = []
    custom: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, raw in enumerate(header):
        name = raw.strip()
        if not name:
            raise Invalid("header", f"column {index + 1} has no name")
        lowered = name.lower()
        if lowered in ("email", "contact_type_id", *CONTACT_FIELDS):
            key = lowered
        else:
            key = "fields." + (name[len("fields.") :] if lowered.startswith("fields.") else name)
            if not 0 < len(key) - len("fields.") <= MAX_CUSTOM_NAME:
                raise Invalid("header", f"column {index + 1}: custom field names are 1-{MAX_CUSTOM_NAME} characters")
        if key in seen:
            raise Invalid("header", f"column {index + 1}: {name!r} appears twice")
        seen.add(key)
        if key == "email":
            email = index
        elif key == "contact_type_id":
            type_index = index
        elif key.startswith("fields."):
            custom.append((index, key[len("fields.") :]))
        else:
            profile.append((index, key))
    if email is None:
        raise Invalid("header", "the header has no email column")
    return Columns(len(header), email, type_index, tuple(profile), tuple(custom))


class RowParser:
    """Turns one CSV row into an import row, or raises Invalid naming the bad field.

    An import row is a list: the normalised email, then one value per `Columns.updated_columns`, then one per
    `Columns.custom_names` (None for an empty cell). Plain text columns (most of them) are checked inline:
    this runs once per row of files with millions of rows.
    """

    def __init__(self, columns: Columns, account_id: int, contact_type_ids: set[int]) -> None:
        self.columns = columns
        self.account_id = account_id
        self.contact_type_ids = contact_type_ids
        self._width = columns.width
        self._email = columns.email
        self._plain = tuple((i, n, MAX_LENGTHS[n]) for i, n in columns.profile if n not in SPECIAL_FIELDS)
        self._special = tuple((i, n) for i, n in columns.profile if n in SPECIAL_FIELDS)
        self._custom = columns.custom
        self._plain_at = tuple(i for i, _, _ in self._plain)
        self._custom_at = tuple(i for i, _ in self._custom)
        # A row no longer than every plain and custom limit cannot have one cell over its limit: such rows
        # (nearly all) skip the per-cell length checks.
        self._fits = min([limit for _, _, limit in self._plain] + [MAX_CUSTOM_VALUE])

    def parse(self, cells: list[str]) -> ImportRow:
        """One row as import values (email normalised, types checked)."""
        if len(cells) != self._width:
            raise Invalid("row", f"has {len(cells)} columns, the header has {self._width}")
        joined = "".join(cells)
        if not joined.isascii() and _UNDECODABLE.search(joined):
            raise Invalid("row", "is not valid UTF-8")
        if "\x00" in joined:
            raise Invalid("row", "must not contain NUL characters")
        row: ImportRow = [clean_email(cells[self._email])]
        checked = len(joined) > self._fits
        if checked:
            self._check_lengths(self._plain, cells)
        row += [cells[i].strip() or None for i in self._plain_at]
        for index, name in self._special:
            row.append(clean_value(name, cells[index]))
        if self.columns.contact_type_id is not None:
            row.append(self._contact_type(cells[self.columns.contact_type_id]))
        if checked:
            self._check_lengths([(i, n, MAX_CUSTOM_VALUE) for i, n in self._custom], cells)
        row += [cells[i].strip() or None for i in self._custom_at]
        return row

    @staticmethod
    def _check_lengths(limits: Iterable[tuple[int, str, int]], cells: list[str]) -> None:
        for index, name, limit in limits:
            if len(cells[index].strip()) > limit:
                raise Invalid(name, f"must be at most {limit} characters")

    def _contact_type(self, raw: str) -> int | None:
        text = raw.strip()
        if not text:
            return None
        if not text.isdigit() or int(text) not in self.contact_type_ids:
            raise Invalid("contact_type_id", f"no contact type {text} in this account")
        return int(text)


@dataclass(frozen=True)
class BadRow:
    """A row that was skipped, and why."""

    line: int
    reason: str


def read_rows(stream: TextIO, parser_for: Callable[[list[str]], RowParser]) -> Iterator[tuple[ImportRow | BadRow, int]]:
    """Parsed rows (or BadRow) with the line each started on; Invalid('header') if the header is unusable."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise Invalid("header", "the file is empty") from None
    except csv.Error as exc:
        raise Invalid("header", f"line 1: {exc}") from None
    if _UNDECODABLE.search("".join(header)):
        raise Invalid("header", "line 1 is not valid UTF-8")
    parser = parser_for(header)
    last_line = reader.line_num
    while True:
        start = last_line + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            last_line = reader.line_num
            yield BadRow(start, str(exc)), start
            continue
        last_line = reader.line_num
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # blank line
        try:
            yield parser.parse(cells), start
        except Invalid as exc:
            yield BadRow(start, exc.message), start


class ContactImporter:
    """Writes batches of parsed rows for one actor; the caller owns the transaction of each batch."""

    def __init__(self, session: Session, actor: Actor, *, hash_key: bytes | None) -> None:
        self.session = session
        self.actor = actor
        self.repo = ContactRepository(session)
        self._hash_key = hash_key
        # Set by a write_batch(expect_new=True) that found an email already there: later batches of the same
        # import had better upsert straight away than try (and undo) another plain insert.
        self.met_existing = False

    def contact_type_ids(self) -> set[int]:
        """The account's contact type ids (checked once per import, not per row)."""
        return self.repo.contact_type_ids(self.actor.account_id)

    def defer_flush(self) -> None:
        """Let this transaction commit without waiting for its disk flush (a later durable commit covers it)."""
        self.repo.defer_commit_flush()

    def write_batch(self, rows: Iterable[ImportRow], columns: Columns, *, expect_new: bool = False) -> tuple[int, int]:
        """Upsert one batch; answers (contacts created, contacts updated).

        `expect_new` (a hint, never a rule) lets PostgreSQL try plain inserts first, which are cheaper than an
        upsert when the emails are new; any existing email sets `met_existing` and the batch is upserted.
        """
        by_email: dict[str, ImportRow] = {}
        repeats = 0
        for row in rows:
            earlier = by_email.setdefault(row[0], row)
            if earlier is not row:
                # The same email twice in one batch: later values win, as they would across batches.
                repeats += 1
                for index, value in enumerate(row):
                    if value is not None:
                        earlier[index] = value
        if not by_email:
            return 0, 0
        if self.repo.is_postgresql():
            created = self._write_pg(list(by_email.values()), columns, expect_new=expect_new)
        else:
            created = self._write_rows(list(by_email.values()), columns)
        return created, len(by_email) - created + repeats

    def _write_pg(self, rows: list[ImportRow], columns: Columns, *, expect_new: bool) -> int:
        """PostgreSQL: contacts and their new addresses in one statement over a COPY-filled stage."""
        account_id = self.actor.account_id
        held = self._suppressed(account_id, [row[0] for row in rows])
        bulk = BulkImportRepository(self.session.connection())
        created, new_held, met_existing = bulk.import_contacts(
            account_id,
            rows,
            columns.updated_columns,
            columns.custom_names,
            held=held,
            lock_foreign_keys=bulk.foreign_keys_lockable(),
            expect_new=expect_new,
        )
        self.met_existing = self.met_existing or met_existing
        if new_held:
            # Erased addresses must come back suppressed, with a ledger entry: the consent engine does that.
            consent = ConsentService(self.session, self.actor, hash_key=self._hash_key)
            for email in sorted(new_held):
                consent.ensure(email)
        return created

    def _write_rows(self, rows: list[ImportRow], columns: Columns) -> int:
        """Other databases: an upsert of contact dicts, then the new addresses."""
        names = columns.updated_columns
        custom = columns.custom_names
        first_custom = 1 + len(names)
        now = utcnow()
        account_id = self.actor.account_id
        records: list[dict[str, Any]] = []
        for row in rows:
            record = dict(zip(names, row[1:first_custom], strict=True))
            record["email"] = row[0]
            record["fields"] = {k: v for k, v in zip(custom, row[first_custom:], strict=True) if v is not None}
            record.update(account_id=account_id, created_at=now, updated_at=now)
            records.append(record)
        new_emails = self.repo.upsert_contacts(account_id, records, names)
        emails = [row[0] for row in rows if row[0] in new_emails]
        held = self._suppressed(account_id, emails)
        if held:
            consent = ConsentService(self.session, self.actor, hash_key=self._hash_key)
            for email in sorted(held):
                consent.ensure(email)
            emails = [e for e in emails if e not in held]
        self.repo.insert_addresses(account_id, emails, now)
        return len(new_emails)

    def _suppressed(self, account_id: int, emails: list[str]) -> set[str]:
        """Which of these emails belong to erased, still suppressed addresses (found by their keyed hash)."""
        key = self._hash_key
        if key is None or not emails or not self.repo.has_suppressions(account_id):
            return set()
        hashes = {email_hash(key, e): e for e in emails}
        return {hashes[h] for h in self.repo.suppressed_hashes(account_id, hashes.keys())}
