"""Bulk contact import: CSV rows checked one by one, written set-based in batches.

Reading never holds the file in memory; a bad row is reported with its line number and skipped. Each batch is
one upsert of contacts (by account and email), one insert of the new addresses, and one look-up of erased,
suppressed addresses, which go through the consent engine so they come back suppressed.
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
        """The contact columns this file sets (an upsert changes only these)."""
        names = [name for _, name in self.profile]
        if self.contact_type_id is not None:
            names.append("contact_type_id")
        return tuple(names)


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
    """Turns one CSV row into an upsert row, or raises Invalid naming the bad field.

    Plain text columns (most of them) are checked inline: this runs once per row of files with millions of rows.
    """

    def __init__(self, columns: Columns, account_id: int, contact_type_ids: set[int]) -> None:
        self.columns = columns
        self.account_id = account_id
        self.contact_type_ids = contact_type_ids
        self.now = utcnow()
        self._plain = tuple((i, n, MAX_LENGTHS[n]) for i, n in columns.profile if n not in SPECIAL_FIELDS)
        self._special = tuple((i, n) for i, n in columns.profile if n in SPECIAL_FIELDS)

    def parse(self, cells: list[str]) -> dict[str, Any]:
        """One row as contact column values (email normalised, types checked)."""
        cols = self.columns
        if len(cells) != cols.width:
            raise Invalid("row", f"has {len(cells)} columns, the header has {cols.width}")
        joined = "".join(cells)
        if not joined.isascii() and _UNDECODABLE.search(joined):
            raise Invalid("row", "is not valid UTF-8")
        if "\x00" in joined:
            raise Invalid("row", "must not contain NUL characters")
        row: dict[str, Any] = {
            "account_id": self.account_id,
            "email": clean_email(cells[cols.email]),
            "created_at": self.now,
            "updated_at": self.now,
        }
        for index, name, limit in self._plain:
            value = cells[index].strip()
            if len(value) > limit:
                raise Invalid(name, f"must be at most {limit} characters")
            row[name] = value or None
        for index, name in self._special:
            row[name] = clean_value(name, cells[index])
        if cols.contact_type_id is not None:
            row["contact_type_id"] = self._contact_type(cells[cols.contact_type_id])
        custom: dict[str, str] = {}
        for index, name in cols.custom:
            value = cells[index].strip()
            if value:
                if len(value) > MAX_CUSTOM_VALUE:
                    raise Invalid(name, f"must be at most {MAX_CUSTOM_VALUE} characters")
                custom[name] = value
        row["fields"] = custom
        return row

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


def read_rows(
    stream: TextIO, parser_for: Callable[[list[str]], RowParser]
) -> Iterator[tuple[dict[str, Any] | BadRow, int]]:
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

    def contact_type_ids(self) -> set[int]:
        """The account's contact type ids (checked once per import, not per row)."""
        return self.repo.contact_type_ids(self.actor.account_id)

    def defer_flush(self) -> None:
        """Let this transaction commit without waiting for its disk flush (a later durable commit covers it)."""
        self.repo.defer_commit_flush()

    def write_batch(self, rows: Iterable[dict[str, Any]], columns: Columns) -> tuple[int, int]:
        """Upsert one batch; answers (contacts created, contacts updated)."""
        by_email: dict[str, dict[str, Any]] = {}
        repeats = 0
        for row in rows:
            earlier = by_email.get(row["email"])
            if earlier is None:
                by_email[row["email"]] = row
                continue
            # The same email twice in one batch: later values win, as they would across batches.
            repeats += 1
            for name, value in row.items():
                if name == "fields":
                    earlier["fields"] = {**earlier["fields"], **value}
                elif value is not None:
                    earlier[name] = value
        if not by_email:
            return 0, 0
        account_id = self.actor.account_id
        new_emails = self.repo.upsert_contacts(account_id, list(by_email.values()), columns.updated_columns)
        self._ensure_addresses([e for e in by_email if e in new_emails])
        created = len(new_emails)
        return created, len(by_email) - created + repeats

    def _ensure_addresses(self, emails: list[str]) -> None:
        plain = emails
        if self._hash_key is not None and emails and self.repo.has_suppressions(self.actor.account_id):
            key = self._hash_key
            hashes = {email_hash(key, e): e for e in emails}
            suppressed = {hashes[h] for h in self.repo.suppressed_hashes(self.actor.account_id, hashes.keys())}
            if suppressed:
                # Erased addresses must come back suppressed, with a ledger entry: the consent engine does that.
                consent = ConsentService(self.session, self.actor, hash_key=key)
                for email in sorted(suppressed):
                    consent.ensure(email)
                plain = [e for e in emails if e not in suppressed]
        self.repo.insert_addresses(self.actor.account_id, plain, utcnow())
