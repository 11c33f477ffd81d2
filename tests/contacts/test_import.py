"""The import's batch writer (herald.contacts.importer.ContactImporter) on SQLite and PostgreSQL, and the
PostgreSQL bulk path with its foreign keys checked per batch or by the triggers."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from herald.actor import Actor
from herald.consent.models import Address, ConsentEvent, Suppression
from herald.consent.service import email_hash
from herald.contacts.bulk_repository import BulkImportRepository
from herald.contacts.importer import Columns, ContactImporter, RowParser, parse_header
from herald.contacts.models import Contact, ContactType
from herald.container import Container
from herald.errors import NotFound


@pytest.fixture(params=["locked", "triggers"])
def fk_mode(request: pytest.FixtureRequest, container: Container, monkeypatch: pytest.MonkeyPatch) -> str:
    """PostgreSQL runs both ways to check foreign keys (SQLite has one); the results must not differ."""
    if container.engine.dialect.name != "postgresql":
        if request.param == "triggers":
            pytest.skip("SQLite has no bulk path")
        return "sqlite"
    if request.param == "triggers":
        monkeypatch.setattr(BulkImportRepository, "foreign_keys_lockable", lambda self: False)
    else:
        with container.sessions() as s:
            assert BulkImportRepository(s.connection()).foreign_keys_lockable()  # the test role is a superuser
    return str(request.param)


def _parse(header: list[str], lines: list[list[str]], account_id: int, type_ids: set[int]) -> tuple[Columns, Any]:
    columns = parse_header(header)
    parser = RowParser(columns, account_id, type_ids)
    return columns, [parser.parse(cells) for cells in lines]


def _write(container: Container, account_id: int, columns: Columns, rows: list[Any]) -> tuple[int, int]:
    with container.transaction() as s:
        importer = ContactImporter(s, Actor(account_id=account_id, source="cli"), hash_key=container.hash_key)
        return importer.write_batch(rows, columns)


def _write_expecting_new(container: Container, account_id: int, columns: Columns, rows: list[Any]) -> tuple[Any, ...]:
    """write_batch(expect_new=True): (created, updated, whether the importer met an existing email)."""
    with container.transaction() as s:
        importer = ContactImporter(s, Actor(account_id=account_id, source="cli"), hash_key=container.hash_key)
        return (*importer.write_batch(rows, columns, expect_new=True), importer.met_existing)


def test_batch_upserts_merges_and_adds_addresses(
    container: Container, account: dict[str, Any], other_account: dict[str, Any], fk_mode: str
) -> None:
    acc = account["account_id"]
    with container.transaction() as s:
        ctype = ContactType(account_id=acc, name="customers")
        s.add(ctype)
        s.add(Address(account_id=acc, email="old@example.com", status="opted_out"))
        s.flush()
        type_id = ctype.id
    header = ["email", "first_name", "age", "contact_type_id", "plan", "source"]
    columns, rows = _parse(
        header,
        [
            ["Ann@Example.com", "Ann", "30", str(type_id), "pro", ""],
            ["bob@example.com", "", "", "", "", "ads"],
            ["ann@example.com", "", "31", "", "", "web"],  # same email later in the batch: later values win
            ["old@example.com", "Old", "", "", "", ""],  # an address without a contact keeps its state
        ],
        acc,
        {type_id},
    )
    assert _write(container, acc, columns, rows) == (3, 1)
    columns, rows = _parse(["email", "first_name", "plan"], [["bob@example.com", "Bob", "free"]], acc, set())
    assert _write(container, acc, columns, rows) == (0, 1)
    with container.sessions() as s:
        contacts = {c.email: c for c in s.scalars(select(Contact).where(Contact.account_id == acc))}
        addresses = dict(s.execute(select(Address.email, Address.status).where(Address.account_id == acc)).all())
        assert s.scalars(select(Contact).where(Contact.account_id == other_account["account_id"])).all() == []
    ann, bob = contacts["ann@example.com"], contacts["bob@example.com"]
    assert (ann.first_name, ann.age, ann.contact_type_id, ann.fields) == (
        "Ann",
        31,
        type_id,
        {"plan": "pro", "source": "web"},
    )
    assert (bob.first_name, bob.age, bob.fields) == ("Bob", None, {"source": "ads", "plan": "free"})
    assert addresses == {"ann@example.com": "unknown", "bob@example.com": "unknown", "old@example.com": "opted_out"}


def test_expect_new_batch_meeting_existing_emails_is_upserted(
    container: Container, account: dict[str, Any], fk_mode: str
) -> None:
    acc = account["account_id"]
    with container.transaction() as s:
        s.add(Contact(account_id=acc, email="ann@example.com", first_name="Ann", fields={"plan": "pro", "x": "1"}))
        s.add(Address(account_id=acc, email="ann@example.com", status="subscribed"))
        s.add(Address(account_id=acc, email="old@example.com", status="opted_out"))  # an address, no contact
    pg = fk_mode != "sqlite"  # SQLite has one path; the hint changes nothing there
    header = ["email", "first_name", "plan"]
    columns, rows = _parse(header, [["new@example.com", "New", "free"], ["ann@example.com", "", "free"]], acc, set())
    assert _write_expecting_new(container, acc, columns, rows) == (1, 1, pg)
    columns, rows = _parse(header, [["old@example.com", "Old", ""]], acc, set())
    assert _write_expecting_new(container, acc, columns, rows) == (1, 0, pg)
    columns, rows = _parse(header, [["fresh@example.com", "", ""], ["more@example.com", "", "gold"]], acc, set())
    assert _write_expecting_new(container, acc, columns, rows) == (2, 0, False)
    with container.sessions() as s:
        contacts = {
            c.email: (c.first_name, c.fields) for c in s.scalars(select(Contact).where(Contact.account_id == acc))
        }
        addresses = dict(s.execute(select(Address.email, Address.status).where(Address.account_id == acc)).all())
    assert contacts == {
        "ann@example.com": ("Ann", {"plan": "free", "x": "1"}),
        "new@example.com": ("New", {"plan": "free"}),
        "old@example.com": ("Old", {}),
        "fresh@example.com": (None, {}),
        "more@example.com": (None, {"plan": "gold"}),
    }
    assert addresses == {
        "ann@example.com": "subscribed",
        "new@example.com": "unknown",
        "old@example.com": "opted_out",
        "fresh@example.com": "unknown",
        "more@example.com": "unknown",
    }


def test_expect_new_batch_waits_for_a_concurrent_writer_of_the_same_email(
    container: Container, account: dict[str, Any]
) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (SQLite has a single writer)")
    acc = account["account_id"]
    columns, rows = _parse(["email", "first_name"], [["a@example.com", "Import"], ["b@example.com", "B"]], acc, set())
    with ThreadPoolExecutor(max_workers=1) as pool:
        with container.transaction() as other:  # another writer adds the same contact, not committed yet
            other.add(Contact(account_id=acc, email="a@example.com", first_name="Api", fields={}))
            other.flush()
            writing = pool.submit(_write_expecting_new, container, acc, columns, rows)
            with container.engine.connect() as watch:  # the import must wait for this transaction's outcome
                deadline = time.monotonic() + 30
                while not writing.done() and time.monotonic() < deadline:
                    waiting = watch.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                        )
                    ).scalar()
                    if waiting:
                        break
                    time.sleep(0.02)
            assert not writing.done()
        assert writing.result(timeout=30) == (1, 1, True)
    with container.sessions() as s:
        names = dict(s.execute(select(Contact.email, Contact.first_name).where(Contact.account_id == acc)).all())
        emails = s.scalars(select(Address.email).where(Address.account_id == acc)).all()
    assert names == {"a@example.com": "Import", "b@example.com": "B"}
    assert sorted(emails) == ["b@example.com"]  # the other writer's contact had no address; none is made for it


def test_many_custom_columns(container: Container, account: dict[str, Any], fk_mode: str) -> None:
    acc = account["account_id"]
    header = ["email", *(f"f{i}" for i in range(120))]  # more than one jsonb_build_object call takes
    columns, rows = _parse(header, [["a@example.com", *(str(i) if i % 7 else "" for i in range(120))]], acc, set())
    assert _write(container, acc, columns, rows) == (1, 0)
    with container.sessions() as s:
        fields = s.scalars(select(Contact.fields).where(Contact.account_id == acc)).one()
    assert fields == {f"f{i}": str(i) for i in range(120) if i % 7}


def test_erased_address_comes_back_suppressed_with_one_ledger_entry(
    container: Container, account: dict[str, Any], fk_mode: str
) -> None:
    acc = account["account_id"]
    with container.transaction() as s:
        s.add(
            Suppression(account_id=acc, email_hash=email_hash(container.hash_key, "gone@example.com"), status="bounced")
        )
    columns, rows = _parse(["email"], [["gone@example.com"], ["kept@example.com"]], acc, set())
    assert _write(container, acc, columns, rows) == (2, 0)
    assert _write(container, acc, columns, [list(r) for r in rows]) == (0, 2)  # a re-import adds no entry
    with container.sessions() as s:
        addresses = dict(s.execute(select(Address.email, Address.status).where(Address.account_id == acc)).all())
        events = s.execute(select(ConsentEvent.kind, ConsentEvent.to_status, ConsentEvent.source)).all()
    assert addresses == {"gone@example.com": "bounced", "kept@example.com": "unknown"}
    assert [tuple(e) for e in events] == [("suppressed", "bounced", "cli")]


def test_contact_type_gone_before_the_write_fails_the_whole_batch(
    container: Container, account: dict[str, Any], fk_mode: str
) -> None:
    acc = account["account_id"]
    with container.transaction() as s:
        ctype = ContactType(account_id=acc, name="customers")
        s.add(ctype)
        s.flush()
        type_id = ctype.id
    header = ["email", "contact_type_id"]
    columns, rows = _parse(header, [["a@example.com", ""], ["b@example.com", str(type_id)]], acc, {type_id})
    with container.transaction() as s:  # deleted after the rows were checked, before they are written
        s.execute(ContactType.__table__.delete().where(ContactType.id == type_id))
    with pytest.raises((NotFound, IntegrityError)):
        _write(container, acc, columns, rows)
    with container.sessions() as s:
        assert s.scalars(select(Contact.email)).all() == []
        assert s.scalars(select(Address.email)).all() == []


def test_triggers_are_back_on_after_the_bulk_statement(container: Container, account: dict[str, Any]) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    acc = account["account_id"]
    columns, rows = _parse(["email"], [["a@example.com"]], acc, set())
    with container.transaction() as s:
        importer = ContactImporter(s, Actor(account_id=acc, source="cli"), hash_key=container.hash_key)
        assert importer.write_batch(rows, columns) == (1, 0)
        # The rest of the transaction (the consent engine's writes) must run with foreign keys checked.
        assert s.execute(text("SHOW session_replication_role")).scalar() == "origin"
        with pytest.raises(IntegrityError):
            with s.begin_nested():
                s.execute(
                    Address.__table__.insert().values(account_id=999_999, email="x@example.com", status="unknown")
                )


def test_lockable_only_with_the_privilege(container: Container) -> None:
    if container.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    with container.transaction() as s:
        s.execute(text("DROP ROLE IF EXISTS herald_import_test"))
        s.execute(text("CREATE ROLE herald_import_test"))
        try:
            s.execute(text("GRANT SELECT ON ALL TABLES IN SCHEMA public TO herald_import_test"))
            s.execute(text("SET LOCAL ROLE herald_import_test"))
            assert not BulkImportRepository(s.connection()).foreign_keys_lockable()
            s.execute(text("RESET ROLE"))
            s.execute(text("GRANT SET ON PARAMETER session_replication_role TO herald_import_test"))
            s.execute(text("SET LOCAL ROLE herald_import_test"))
            assert BulkImportRepository(s.connection()).foreign_keys_lockable()
        finally:
            s.rollback()
