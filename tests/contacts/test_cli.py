"""`herald contacts import` through the real command (herald.cli.app), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from herald import cli
from herald.consent.models import Address, ConsentEvent, Suppression
from herald.consent.service import email_hash
from herald.contacts.models import Contact, ContactType
from herald.container import Container
from herald.settings import Settings


@pytest.fixture
def herald(settings: Settings, container: Container, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `herald ARGS` in-process through the real Typer app, configured by environment variables."""
    monkeypatch.setenv("HERALD_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HERALD_SECRET_KEY", settings.secret_key or "")
    monkeypatch.setenv("HERALD_SMTP_URL", settings.smtp_url)
    monkeypatch.setenv("HERALD_DATA_DIR", str(settings.data_dir))
    cli._register_feature_commands()
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(cli.app, list(args), catch_exceptions=False)

    return run


def _csv(tmp_path: Path, text: str, name: str = "contacts.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _contacts(container: Container, account_id: int) -> dict[str, Contact]:
    with container.sessions() as s:
        rows = s.scalars(select(Contact).where(Contact.account_id == account_id)).all()
        return {c.email: c for c in rows}


def _statuses(container: Container, account_id: int) -> dict[str, str]:
    with container.sessions() as s:
        rows = s.execute(select(Address.email, Address.status).where(Address.account_id == account_id)).all()
        return {e: st for e, st in rows}


def _add_type(container: Container, account_id: int, name: str = "customers") -> int:
    with container.transaction() as s:
        ctype = ContactType(account_id=account_id, name=name)
        s.add(ctype)
        s.flush()
        return ctype.id


def test_import_reports_bad_rows_by_line_and_keeps_the_rest(
    herald: Any,
    container: Container,
    account: dict[str, Any],
    other_account: dict[str, Any],
    tmp_path: Path,
) -> None:
    acc = account["account_id"]
    ctype = _add_type(container, acc)
    foreign = _add_type(container, other_account["account_id"], "theirs")
    text = (
        "Email,first_name,age,contact_type_id,plan,fields.source\n"
        f" Ann@Example.COM ,Ann,31,{ctype},pro,web\n"  # line 2
        "not-an-email,Bad,20,,free,x\n"  # line 3: invalid email
        "bob@example.com,Bob,old,,free,x\n"  # line 4: bad age
        f"cat@example.com,Cat,40,{foreign},free,x\n"  # line 5: another tenant's type
        "dan@example.com,Dan,50\n"  # line 6: wrong column count
        "\n"
        'eve@example.com,"Eve\nMulti",22,,,\n'  # lines 8-9: a quoted field spanning two lines
        "fay@example.com,Fay,999,,,\n"  # line 10: age out of range
        "gus@example.com,Gus,,,,\n"  # line 11
    )
    result = herald("contacts", "import", _csv(tmp_path, text), "--account", str(acc))
    assert result.exit_code == 0, result.output
    err = result.stderr
    for line, word in [(3, "email"), (4, "age"), (5, "contact_type_id"), (6, "row: has 3 columns"), (10, "age")]:
        assert f"line {line}: {word}" in err, err
    assert "line 8" not in err and "line 2:" not in err and "line 11" not in err
    assert "imported 3, updated 0, skipped 5" in err
    contacts = _contacts(container, acc)
    assert sorted(contacts) == ["ann@example.com", "eve@example.com", "gus@example.com"]
    ann = contacts["ann@example.com"]
    assert (ann.first_name, ann.age, ann.contact_type_id) == ("Ann", 31, ctype)
    assert ann.fields == {"plan": "pro", "source": "web"}
    assert contacts["eve@example.com"].first_name == "Eve\nMulti" and contacts["eve@example.com"].fields == {}
    assert _statuses(container, acc) == {e: "unknown" for e in contacts}
    assert _contacts(container, other_account["account_id"]) == {}


def test_reimport_updates_without_erasing(
    herald: Any, container: Container, account: dict[str, Any], tmp_path: Path
) -> None:
    acc = str(account["account_id"])
    first = "email,first_name,city,plan\nann@example.com,Ann,Rome,pro\nbob@example.com,Bob,Oslo,free\n"
    assert (
        "imported 2, updated 0, skipped 0"
        in herald("contacts", "import", _csv(tmp_path, first), "--account", acc).stderr
    )
    # Bob's address was opted out meanwhile; a re-import must not reset it.
    with container.transaction() as s:
        s.execute(Address.__table__.update().where(Address.email == "bob@example.com").values(status="opted_out"))
    second = (
        "email,city,seats\nANN@example.com,Paris,3\nbob@example.com,,2\ncid@example.com,Lima,1\nann@example.com,Nice,\n"
    )
    result = herald("contacts", "import", _csv(tmp_path, second, "second.csv"), "--account", acc)
    assert result.exit_code == 0
    assert "imported 1, updated 3, skipped 0" in result.stderr
    contacts = _contacts(container, account["account_id"])
    ann, bob = contacts["ann@example.com"], contacts["bob@example.com"]
    assert (ann.first_name, ann.city, ann.fields) == ("Ann", "Nice", {"plan": "pro", "seats": "3"})
    assert (bob.first_name, bob.city, bob.fields) == ("Bob", "Oslo", {"plan": "free", "seats": "2"})
    assert _statuses(container, account["account_id"]) == {
        "ann@example.com": "unknown",
        "bob@example.com": "opted_out",
        "cid@example.com": "unknown",
    }


def test_many_small_batches(herald: Any, container: Container, account: dict[str, Any], tmp_path: Path) -> None:
    lines = ["email,last_name"]
    for i in range(25):
        lines.append(f"p{i % 20}@example.com,L{i}")  # five repeats, some within a batch, some across
        if i == 12:
            lines.append("broken,row,too,long")
    path = _csv(tmp_path, "\n".join(lines) + "\n")
    result = herald("contacts", "import", path, "--account", str(account["account_id"]), "--batch-size", "3")
    assert result.exit_code == 0, result.output
    assert "imported 20, updated 5, skipped 1" in result.stderr
    assert "line 15: row" in result.stderr
    contacts = _contacts(container, account["account_id"])
    assert len(contacts) == 20 and contacts["p0@example.com"].last_name == "L20"


def test_suppressed_address_comes_back_suppressed(
    herald: Any, container: Container, account: dict[str, Any], tmp_path: Path
) -> None:
    acc = account["account_id"]
    with container.transaction() as s:
        key = container.hash_key
        s.add(Suppression(account_id=acc, email_hash=email_hash(key, "gone@example.com"), status="spam_reported"))
    text = "email\nGone@example.com\nnew@example.com\n"
    result = herald("contacts", "import", _csv(tmp_path, text), "--account", str(acc))
    assert "imported 2, updated 0, skipped 0" in result.stderr
    assert _statuses(container, acc) == {"gone@example.com": "spam_reported", "new@example.com": "unknown"}
    with container.sessions() as s:
        kinds = s.scalars(select(ConsentEvent.kind).where(ConsentEvent.account_id == acc)).all()
    assert kinds == ["suppressed"]


def test_undecodable_and_oversize_rows_are_skipped(
    herald: Any, container: Container, account: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        b"\xef\xbb\xbfemail,first_name,note\n"
        b"a@example.com,Andr\xc3\xa9,x\n"
        b"b@example.com,Bad \xff byte,x\n"
        b"c@example.com," + b"x" * 201 + b",x\n"
        b"d@example.com,Dee," + b"n" * 2001 + b"\n"
        b"f@example.com,Fat," + b"f" * 200_000 + b"\n"
        b"e@example.com,Eve,y\n"
    )
    result = herald("contacts", "import", str(path), "--account", str(account["account_id"]))
    assert result.exit_code == 0
    assert "line 3: row: is not valid UTF-8" in result.stderr
    assert "line 4: first_name" in result.stderr and "line 5: note" in result.stderr
    assert "line 6: field larger than field limit" in result.stderr
    assert "imported 2, updated 0, skipped 4" in result.stderr
    contacts = _contacts(container, account["account_id"])
    assert sorted(contacts) == ["a@example.com", "e@example.com"] and contacts["a@example.com"].first_name == "André"


def test_missing_file_account_or_email_column_exit_1(
    herald: Any, container: Container, account: dict[str, Any], tmp_path: Path
) -> None:
    acc = str(account["account_id"])
    result = herald("contacts", "import", str(tmp_path / "nope.csv"), "--account", acc)
    assert result.exit_code == 1 and "not found" in result.stderr
    good = _csv(tmp_path, "email\na@example.com\n")
    result = herald("contacts", "import", good, "--account", "999")
    assert result.exit_code == 1 and "account 999 not found" in result.stderr
    result = herald("contacts", "import", _csv(tmp_path, "name,city\nA,B\n", "x.csv"), "--account", acc)
    assert result.exit_code == 1 and "no email column" in result.stderr
    result = herald(
        "contacts", "import", _csv(tmp_path, "email,city,City\na@example.com,B,C\n", "y.csv"), "--account", acc
    )
    assert result.exit_code == 1 and "appears twice" in result.stderr
    result = herald("contacts", "import", _csv(tmp_path, "", "empty.csv"), "--account", acc)
    assert result.exit_code == 1 and "empty" in result.stderr
    assert _contacts(container, account["account_id"]) == {}
