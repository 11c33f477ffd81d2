"""SQL for accounts, users and credentials."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

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

    def credentials_of_user(self, user_id: int) -> list[Credential]:
        """Every credential a user holds."""
        return list(self.session.scalars(select(Credential).where(Credential.user_id == user_id)))

    def granted_category_ids(self, user_id: int) -> set[int]:
        """Categories a user may use under folder restrictions."""
        stmt = select(UserCategoryGrant.category_id).where(UserCategoryGrant.user_id == user_id)
        return set(self.session.scalars(stmt))
