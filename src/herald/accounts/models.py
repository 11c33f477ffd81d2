"""Account, User and Credential tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from herald.db.base import Base, utcnow


class Account(Base):
    """A tenant: every other row belongs to exactly one account."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # When true, only addresses that are explicitly opted in are eligible for marketing sends.
    require_optin: Mapped[bool] = mapped_column(default=False)
    # Sign-Up.to "folder restrictions": users see only lists in categories granted to them.
    folder_restrictions: Mapped[bool] = mapped_column(default=False)
    # Branding for public pages: {"name","logo_url","color","footer"}.
    branding: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A person (or integration) acting inside an account; admins may change anyone's objects."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(default=False)
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Credential(Base):
    """One API credential of one dialect.

    `key_id` is the public half used to find the row (account id, client id, public key, a
    hash prefix); `secret_hash` is a SHA-256 of the secret (secrets are random, so no slow hash is
    needed); `secret_enc` holds the Fernet-encrypted secret for schemes that must re-sign with it
    (Sign-Up.to SuTHash).
    """

    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("kind", "key_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    key_id: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64))
    secret_enc: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserCategoryGrant(Base):
    """A category (folder) a user may use when the account has folder restrictions on."""

    __tablename__ = "user_category_grants"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True)


class UsedNonce(Base):
    """A request nonce already seen for a credential (Sign-Up.to SuTHash), so a signed request is never replayed.

    Rows older than the accepted clock skew can be purged: a request that old is refused by its Date anyway.
    """

    __tablename__ = "used_nonces"
    __table_args__ = (UniqueConstraint("credential_id", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id", ondelete="CASCADE"))
    nonce: Mapped[str] = mapped_column(String(128))
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
