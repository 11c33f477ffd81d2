"""Creating accounts and users with their credentials, and authenticating each credential scheme."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy.orm import Session

from herald.accounts.models import Account, Credential, User, UserCategoryGrant
from herald.accounts.repository import AccountRepository
from herald.errors import Invalid, NotFound, Unauthorized
from herald.security import Cipher, hash_secret, new_hex, new_secret, secret_matches

_passwords = PasswordHasher()

# Credential kinds. Account-level kinds have no user; per-user kinds act as that user.
NATIVE, ALLCLIENTS, MAILKIT, SKYCORE, ALLS, SIGNUPTO = "native", "allclients", "mailkit", "skycore", "alls", "signupto"


@dataclass
class Authenticated:
    """The result of a successful credential check."""

    account: Account
    credential: Credential
    user: User | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        """Account-level keys act with admin rights; user keys with the user's."""
        return self.user is None or self.user.is_admin


def check_credential(row: tuple[int, int, str, int | None, bool] | None, secret: str) -> tuple[int, int]:
    """(credential id, account id) of a credential read on a hot path as (id, account id, secret hash, account
    id or None, user ok), when `secret` matches and its account and user exist; Unauthorized otherwise."""
    # Hash and compare even when the key id is unknown, as _check does.
    stored = row[2] if row is not None else "0" * 64
    if not secret_matches(secret, stored) or row is None or row[3] is None or not row[4]:
        raise Unauthorized("Authentication failed")
    return row[0], row[1]


def _lookup_id(secret: str) -> str:
    """The index key of a secret that is itself the only thing the client presents."""
    return hash_secret(secret)[:24]


class AccountService:
    """Accounts, users and their credentials for the native API and the five dialects."""

    def __init__(self, session: Session, cipher: Cipher) -> None:
        self.repo = AccountRepository(session)
        self.cipher = cipher

    # -- creation -------------------------------------------------------------------------------
    def create_account(self, name: str) -> dict[str, Any]:
        """Create an account with one admin user; returns every credential in plain text, once."""
        name = name.strip()
        if not name:
            raise Invalid("name", "must not be empty")
        account = Account(name=name, branding={})
        self.repo.add(account)
        aid = account.id
        apikey = new_hex(32)
        client_md5 = new_hex(32)
        sky_key = new_secret(24)
        public_key, secret_key = "pk_" + new_hex(32), "sk_" + new_secret(32)
        self._credential(aid, None, ALLCLIENTS, str(aid), apikey)
        self._credential(aid, None, MAILKIT, str(aid), client_md5)
        self._credential(aid, None, SKYCORE, _lookup_id(sky_key), sky_key)
        self._credential(aid, None, ALLS, public_key, secret_key)
        user = self.create_user(aid, name, is_admin=True)
        return {
            "account_id": aid,
            "user_id": user["user_id"],
            "api_token": user["api_token"],
            "allclients": {"accountid": str(aid), "apikey": apikey},
            "mailkit": {"client_id": aid, "client_md5": client_md5},
            "skycore": {"api_key": sky_key},
            "alls": {"public_key": public_key, "secret_key": secret_key},
            "signupto": user["signupto"],
        }

    def create_user(
        self, account_id: int, name: str, *, is_admin: bool = False, password: str | None = None
    ) -> dict[str, Any]:
        """Create a user with a native API token and Sign-Up.to keys; returns them in plain text, once."""
        if self.repo.get_account(account_id) is None:
            raise NotFound("account", account_id)
        name = name.strip()
        if not name:
            raise Invalid("name", "must not be empty")
        user = User(account_id=account_id, name=name, is_admin=is_admin)
        if password is not None:
            user.password_hash = self.hash_password(password)
        self.repo.add(user)
        token = "hrl_" + new_secret(32)
        self._credential(account_id, user.id, NATIVE, _lookup_id(token), token)
        sut_key = new_hex(32)
        self._credential(account_id, user.id, SIGNUPTO, f"{account_id}:{user.id}", sut_key, recoverable=True)
        return {
            "user_id": user.id,
            "api_token": token,
            "signupto": {"cid": account_id, "uid": user.id, "api_key": sut_key},
        }

    def _credential(
        self, account_id: int, user_id: int | None, kind: str, key_id: str, secret: str, *, recoverable: bool = False
    ) -> None:
        self.repo.add(
            Credential(
                account_id=account_id,
                user_id=user_id,
                kind=kind,
                key_id=key_id,
                secret_hash=hash_secret(secret),
                secret_enc=self.cipher.encrypt(secret) if recoverable else None,
            )
        )

    def grant_category(self, user_id: int, category_id: int) -> None:
        """Let a user use a category when folder restrictions are on."""
        self.repo.add(UserCategoryGrant(user_id=user_id, category_id=category_id))

    # -- passwords ------------------------------------------------------------------------------
    @staticmethod
    def hash_password(password: str) -> str:
        """argon2id hash of a user password."""
        if len(password) < 8:
            raise Invalid("password", "must be at least 8 characters")
        return _passwords.hash(password)

    def set_password(self, account_id: int, user_id: int, password: str) -> None:
        """Give a user a password for the admin UI."""
        user = self.repo.get_user(account_id, user_id)
        if user is None:
            raise NotFound("user", user_id)
        user.password_hash = self.hash_password(password)

    def check_password(self, user_id: int, password: str) -> User:
        """The user when the password is right; Unauthorized otherwise (same error for every failure)."""
        user = self.repo.session.get(User, user_id)
        stored = user.password_hash if user is not None else None
        try:
            ok = _passwords.verify(stored or _dummy_hash(), password) and stored is not None
        except VerificationError:
            ok = False
        if not ok or user is None:
            raise Unauthorized("Authentication failed")
        return user

    # -- authentication -------------------------------------------------------------------------
    def _check(self, kind: str, key_id: str, secret: str) -> Authenticated:
        cred = self.repo.credential(kind, key_id)
        # Hash and compare even when the key id is unknown, so timing does not reveal which ids exist.
        stored = cred.secret_hash if cred is not None else "0" * 64
        if not secret_matches(secret, stored) or cred is None:
            raise Unauthorized("Authentication failed")
        account = self.repo.get_account(cred.account_id)
        if account is None:
            raise Unauthorized("Authentication failed")
        user = self.repo.get_user(cred.account_id, cred.user_id) if cred.user_id is not None else None
        if cred.user_id is not None and user is None:
            raise Unauthorized("Authentication failed")
        return Authenticated(account=account, credential=cred, user=user)

    def verify_mailkit(self, client_id: str, client_md5: str) -> tuple[int, int]:
        """Mailkit client_id + client_md5 checked like authenticate_mailkit, for read-only calls on a hot path:
        (credential id, account id) from one Core query, without loading the account and user objects."""
        return check_credential(self.repo.credential_check(MAILKIT, client_id), client_md5)

    def authenticate_token(self, token: str) -> Authenticated:
        """A native API bearer token."""
        return self._check(NATIVE, _lookup_id(token), token)

    def authenticate_allclients(self, accountid: str, apikey: str) -> Authenticated:
        """AllClients accountid + apikey."""
        return self._check(ALLCLIENTS, accountid, apikey)

    def authenticate_mailkit(self, client_id: str, client_md5: str) -> Authenticated:
        """Mailkit client_id + client_md5."""
        return self._check(MAILKIT, client_id, client_md5)

    def authenticate_skycore(self, api_key: str) -> Authenticated:
        """Skycore API_KEY."""
        return self._check(SKYCORE, _lookup_id(api_key), api_key)

    def authenticate_alls(self, public_key: str, secret_key: str) -> Authenticated:
        """AllsTechnology PublicKey + SecretKey headers."""
        return self._check(ALLS, public_key, secret_key)

    def signupto_key(self, cid: str, uid: str) -> tuple[Credential, str] | None:
        """The Sign-Up.to credential and its plain key, to recompute a SuTHash signature; None if unknown."""
        cred = self.repo.credential(SIGNUPTO, f"{cid}:{uid}")
        if cred is None or cred.secret_enc is None:
            return None
        return cred, self.cipher.decrypt(cred.secret_enc)

    def authenticated_for(self, cred: Credential) -> Authenticated:
        """The Authenticated for a credential already verified by a signature check."""
        account = self.repo.get_account(cred.account_id)
        user = self.repo.get_user(cred.account_id, cred.user_id) if cred.user_id is not None else None
        if account is None or (cred.user_id is not None and user is None):
            raise Unauthorized("Authentication failed")
        return Authenticated(account=account, credential=cred, user=user)


@cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown users, so a miss costs as long as a wrong password."""
    return _passwords.hash("not-a-real-password-used-for-timing")
