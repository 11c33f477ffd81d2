"""`herald addresses export|erase EMAIL --account ID` through the real CLI app (and once as the `herald` script)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from herald import cli
from herald.container import Container
from herald.settings import Settings
from tests.consent.privacy_factory import EMAIL, address_status, scan, seed_person


def _env(settings: Settings) -> dict[str, str]:
    return {
        "HERALD_DATABASE_URL": settings.database_url,
        "HERALD_SECRET_KEY": settings.secret_key or "",
        "HERALD_SMTP_URL": settings.smtp_url,
        "HERALD_DATA_DIR": str(settings.data_dir),
    }


def herald(settings: Settings, *args: str) -> Result:
    """Run `herald ARGS` in-process through the root Typer app with the feature commands registered."""
    if not any(group.name == "addresses" for group in cli.app.registered_groups):
        cli._register_feature_commands()
    return CliRunner().invoke(cli.app, list(args), env=_env(settings))


def test_export_prints_one_json_document(settings: Settings, container: Container, account: dict[str, Any]) -> None:
    person = seed_person(container, account["account_id"])
    out = herald(settings, "addresses", "export", " Zed.Quux_9@Example.COM", "--account", str(account["account_id"]))
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["email"] == EMAIL and doc["address"]["status"] == "spam_reported"
    assert doc["contact"]["fields"]["pet"] == "Snargleblast"
    assert [d["id"] for d in doc["deliveries"]] == [person.delivery_id]
    assert len(doc["consent_events"]) == 3 and doc["optin_records"] and doc["inbound_messages"]


def test_unknown_address_account_or_bad_email_fail_with_exit_code_1(
    settings: Settings, container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    person = seed_person(container, account["account_id"])
    before = scan(container, person.needles)
    aid = str(account["account_id"])
    for command in ("export", "erase"):
        out = herald(settings, "addresses", command, "nobody@example.com", "--account", aid)
        assert out.exit_code == 1 and "address nobody@example.com not found" in out.stderr and out.stdout == ""
        out = herald(settings, "addresses", command, EMAIL, "--account", "999")
        assert out.exit_code == 1 and "account 999 not found" in out.stderr
        out = herald(settings, "addresses", command, EMAIL, "--account", str(other_account["account_id"]))
        assert out.exit_code == 1 and "not found" in out.stderr
        out = herald(settings, "addresses", command, "not-an-email", "--account", aid)
        assert out.exit_code == 1 and "email" in out.stderr
    assert herald(settings, "addresses", "erase", EMAIL).exit_code == 2  # --account is required
    assert scan(container, person.needles) == before


def test_erase_removes_everything_and_keeps_the_suppression(
    settings: Settings, container: Container, account: dict[str, Any]
) -> None:
    person = seed_person(container, account["account_id"])
    out = herald(settings, "addresses", "erase", EMAIL, "--account", str(account["account_id"]))
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == {
        "email": EMAIL,
        "erased": True,
        "suppressed": "spam_reported",
        "contact_removed": True,
        "deliveries_scrubbed": 1,
        "ledger_events_anonymised": 3,
    }
    assert "erased" in out.stderr
    assert scan(container, person.needles) == []
    out = herald(settings, "addresses", "export", EMAIL, "--account", str(account["account_id"]))
    assert out.exit_code == 1


def test_erased_spam_reporter_reimported_by_csv_stays_suppressed(
    settings: Settings, container: Container, account: dict[str, Any], tmp_path: Path
) -> None:
    from herald.consent.eligibility import eligible

    herald(settings, "--help")
    if not any(group.name == "contacts" for group in cli.app.registered_groups):
        pytest.skip("!!! `herald contacts import` is not built yet: CSV re-suppression is NOT verified")
    aid = str(account["account_id"])
    seed_person(container, account["account_id"])
    assert herald(settings, "addresses", "erase", EMAIL, "--account", aid).exit_code == 0
    csv = tmp_path / "people.csv"
    csv.write_text(f"email,first_name\n{EMAIL.upper()},Zebulon\nfresh@example.com,Fred\n")
    out = herald(settings, "contacts", "import", str(csv), "--account", aid)
    assert out.exit_code == 0, out.output
    assert address_status(container, account["account_id"], EMAIL) == "spam_reported"
    assert address_status(container, account["account_id"], "fresh@example.com") == "unknown"
    from sqlalchemy import select

    from herald.consent.models import Address
    from herald.db.base import utcnow

    with container.transaction() as s:
        stmt = select(Address.email).where(Address.account_id == account["account_id"], eligible(utcnow()))
        assert list(s.scalars(stmt)) == ["fresh@example.com"]


def test_the_installed_herald_script_erases(settings: Settings, container: Container, account: dict[str, Any]) -> None:
    script = shutil.which("herald") or str(Path(os.sys.executable).parent / "herald")
    seed_person(container, account["account_id"], status="opted_out")
    run = subprocess.run(
        [script, "addresses", "erase", EMAIL, "--account", str(account["account_id"])],
        env={**os.environ, **_env(settings)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["suppressed"] == "opted_out"
    assert address_status(container, account["account_id"], EMAIL) is None
