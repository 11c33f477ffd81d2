"""Who is acting: the account, user and credential behind a call, and through which edge."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    """Passed to every service call so the ledger can say who changed what, and tenancy is enforced."""

    account_id: int
    source: str
    user_id: int | None = None
    credential_id: int | None = None
    is_admin: bool = True
    ip: str | None = None
    user_agent: str | None = None
