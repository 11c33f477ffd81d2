"""SQL for accounts, users and credentials."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from herald.accounts.models import Account, Credential, User, UserCategoryGrant


class AccountRepository:
    """Reads and writes accounts, users, credentials and category grants."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, obj: Account | User | Credential | UserCategoryGrant) -> None:
        """Stage a new row and give it its id."""
        self.session.add(obj)
        self.session.flush()

    def get_account(self, account_id: int) -> Account | None:
        """The account, or None."""
        return self.session.get(Account, account_id)

    def get_user(self, account_id: int, user_id: int) -> User | None:
        """A user of the account, or None (a user of another account is None too)."""
        user = self.session.get(User, user_id)
        return user if user is not None and user.account_id == account_id else None

    def user_by_name(self, account_id: int, name: str) -> User | None:
        """The account's oldest user with this name (the admin UI's sign-in by account + name), or None."""
        stmt = select(User).where(User.account_id == account_id, User.name == name).order_by(User.id).limit(1)
        return self.session.scalars(stmt).first()

    def users(self, account_id: int) -> list[User]:
        """Every user of the account, oldest first."""
        return list(self.session.scalars(select(User).where(User.account_id == account_id).order_by(User.id)))

    def first_admin(self, account_id: int) -> User | None:
        """The account's first admin user (owner of sends created with account-level keys)."""
        stmt = select(User).where(User.account_id == account_id, User.is_admin.is_(True)).order_by(User.id).limit(1)
        return self.session.scalars(stmt).first()

    def credential(self, kind: str, key_id: str) -> Credential | None:
        """The credential of a kind with this public key id, or None."""
        stmt = select(Credential).where(Credential.kind == kind, Credential.key_id == key_id)
        return self.session.scalars(stmt).first()

    def credential_check(self, kind: str, key_id: str) -> tuple[int, int, str, int | None, bool] | None:
        """One Core read for a hot authentication path: credential id, account id, secret hash, account
        exists (id or None), and whether its user (if it has one) exists in the same account."""
        row = self.session.connection().execute(_credential_check(), {"kind": kind, "key_id": key_id}).first()
        return None if row is None else (row[0], row[1], row[2], row[3], bool(row[4]))

    def credentials_of_user(self, user_id: int) -> list[Credential]:
        """Every credential a user holds."""
        return list(self.session.scalars(select(Credential).where(Credential.user_id == user_id)))

    def granted_category_ids(self, user_id: int) -> set[int]:
        """Categories a user may use under folder restrictions."""
        stmt = select(UserCategoryGrant.category_id).where(UserCategoryGrant.user_id == user_id)
        return set(self.session.scalars(stmt))


def credential_check() -> Select[int, int, str, int, bool]:
    """A credential by (kind, key_id) bind parameters, with its account and whether its user still belongs.

    Columns: credential id, account id, secret hash, account id again (NULL: account gone), user ok. Other
    reads extend it (Mailkit getstatus joins the address and topics to it), so every refusal is decided alike.
    """
    user_ok = and_(User.id == Credential.user_id, User.account_id == Credential.account_id)
    return (
        select(
            Credential.id,
            Credential.account_id,
            Credential.secret_hash,
            Account.id,
            Credential.user_id.is_(None) | User.id.is_not(None),
        )
        .outerjoin(Account, Account.id == Credential.account_id)
        .outerjoin(User, user_ok)
        .where(Credential.kind == bindparam("kind"), Credential.key_id == bindparam("key_id"))
    )


@cache
def _credential_check() -> Executable:
    # Built once: constructing the expression cost as much as running it on a hot path.
    return credential_check().limit(1)
