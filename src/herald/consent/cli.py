"""`herald addresses export|erase EMAIL --account ID`: the privacy commands of the CLI."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from herald.actor import Actor

addresses_app = typer.Typer(help="Addresses: export everything held about one, or erase it.", no_args_is_help=True)

AccountOpt = Annotated[int, typer.Option("--account", help="Account id.")]


def register(app: typer.Typer) -> None:
    """Add the `addresses` sub-command group to the root CLI (once, however often it is called)."""
    if any(group.name == "addresses" for group in app.registered_groups):
        return
    app.add_typer(addresses_app, name="addresses")


def _run(account: int, fn: Any) -> Any:
    from herald import cli
    from herald.accounts.models import Account
    from herald.consent.privacy import PrivacyService

    container = cli._migrated()
    try:
        with container.transaction() as session:
            if session.get(Account, account) is None:
                cli.fail(f"account {account} not found")
            svc = PrivacyService(session, Actor(account_id=account, source="cli"), hash_key=container.hash_key)
            return cli._run_service(lambda: fn(svc))
    finally:
        # Close pooled connections now: the command may run inside a longer-lived process (tests, scripts).
        container.engine.dispose()


@addresses_app.command("export")
def export(email: str, account: AccountOpt) -> None:
    """Print everything held about an address as one JSON document."""
    document = _run(account, lambda svc: svc.export(email))
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


@addresses_app.command("erase")
def erase(email: str, account: AccountOpt) -> None:
    """Erase an address's personal data; an opted-out, bounced or spam-reported one stays suppressed."""
    from herald import cli

    result = _run(account, lambda svc: svc.erase(email))
    kept = f" (kept as a keyed-hash suppression: {result.suppressed})" if result.suppressed else ""
    cli.console.print(f"erased {result.email}{kept}", highlight=False)
    sys.stdout.write(
        json.dumps(
            {
                "email": result.email,
                "erased": True,
                "suppressed": result.suppressed,
                "contact_removed": result.contact_removed,
                "deliveries_scrubbed": result.deliveries_scrubbed,
                "ledger_events_anonymised": result.ledger_events_anonymised,
            }
        )
        + "\n"
    )
