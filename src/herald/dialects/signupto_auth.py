"""Sign-Up.to authentication: SuTHash request signatures and SuTToken bearer tokens.

SuTHash signs, with SHA-1, the lines (joined by CRLF, no trailing CRLF after the key)
    "{VERB} {path}", "Date: {date}", "X-SuT-CID: {cid}", "X-SuT-UID: {uid}", "X-SuT-Nonce: {nonce}", "{api key}"
where path is the request path exactly as sent (case kept, query string dropped). A request whose Date is
more than MAX_SKEW away from now, or whose nonce the credential already used, is refused.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from sqlalchemy.orm import Session

from herald.accounts.models import Credential, User
from herald.accounts.repository import AccountRepository
from herald.accounts.service import AccountService, Authenticated
from herald.db.base import utcnow
from herald.dialects.signupto_repository import SignuptoRepository
from herald.errors import Unauthorized
from herald.security import Cipher, constant_time_equals, hash_secret, new_secret, secret_matches

MAX_SKEW = timedelta(minutes=15)
TOKEN_KIND = "suttoken"
TOKEN_TTL = timedelta(hours=8)
_SIGNATURE = re.compile(r'^\s*SuTHash\s+signature\s*=\s*"?([0-9a-fA-F]{40})"?\s*$')
_TOKEN = re.compile(r"^\s*SuTToken\s+(\S+)\s*$")


def signature(verb: str, path: str, date: str, cid: str, uid: str, nonce: str, api_key: str) -> str:
    """The SuTHash signature of one request (what a client computes)."""
    canonical = (
        f"{verb.upper()} {path}\r\nDate: {date}\r\nX-SuT-CID: {cid}\r\nX-SuT-UID: {uid}\r\n"
        f"X-SuT-Nonce: {nonce}\r\n{api_key}"
    )
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()


def _token_lookup(token: str) -> str:
    return hash_secret(token)[:24]


class SignuptoAuth:
    """Checks the Authorization header of a Sign-Up.to request inside one (short) transaction."""

    def __init__(self, session: Session, cipher: Cipher) -> None:
        self.session = session
        self.accounts = AccountService(session, cipher)
        self.repo = SignuptoRepository(session)

    def authenticate(self, verb: str, path: str, headers: dict[str, str]) -> Authenticated:
        """The caller of a request; Unauthorized for anything but a valid, fresh SuTHash or SuTToken."""
        header = headers.get("authorization", "")
        token = _TOKEN.match(header)
        if token:
            return self.check_token(token.group(1))
        match = _SIGNATURE.match(header)
        if not match:
            raise Unauthorized("Missing or malformed Authorization header (SuTHash or SuTToken expected)")
        return self.check_hash(verb, path, headers, match.group(1).lower())

    def check_hash(self, verb: str, path: str, headers: dict[str, str], presented: str) -> Authenticated:
        """Recompute the SuTHash signature with the stored key and burn the nonce."""
        date, cid, uid, nonce = (headers.get(h, "") for h in ("date", "x-sut-cid", "x-sut-uid", "x-sut-nonce"))
        if not (date and cid and uid and nonce):
            raise Unauthorized("Date, X-SuT-CID, X-SuT-UID and X-SuT-Nonce headers are required")
        if len(nonce) > 128:
            raise Unauthorized("X-SuT-Nonce is too long")
        found = self.accounts.signupto_key(cid.strip(), uid.strip())
        key = found[1] if found is not None else new_secret(16)
        candidates = {path, path.rstrip("/") or "/"}
        ok = False
        for candidate in candidates:
            ok = constant_time_equals(signature(verb, candidate, date, cid, uid, nonce, key), presented) or ok
        if not ok or found is None:
            raise Unauthorized("Invalid signature")
        when = _parse_date(date)
        now = utcnow()
        if when is None or abs(now - when) > MAX_SKEW:
            raise Unauthorized("Date header is missing, malformed or too far from the server's time")
        cred = found[0]
        if not self.repo.use_nonce(cred.id, nonce, now, forget_before=now - 2 * MAX_SKEW):
            raise Unauthorized("Nonce already used")
        return self.accounts.authenticated_for(cred)

    def check_token(self, token: str) -> Authenticated:
        """A SuTToken issued by POST /v1/token and not yet expired."""
        cred = AccountRepository(self.session).credential(TOKEN_KIND, _token_lookup(token))
        stored = cred.secret_hash if cred is not None else "0" * 64
        if not secret_matches(token, stored) or cred is None:
            raise Unauthorized("Invalid token")
        if cred.created_at + TOKEN_TTL < utcnow():
            raise Unauthorized("Token expired")
        return self.accounts.authenticated_for(cred)

    def login(self, username: str, password: str) -> Authenticated:
        """A user by `uid` (or `cid:uid`) and either their UI password or their Sign-Up.to API key."""
        cid, _, uid = username.strip().rpartition(":")
        if not uid.isdigit():
            raise Unauthorized("Authentication failed")
        user = self.session.get(User, int(uid))
        if user is None or (cid and cid != str(user.account_id)):
            raise Unauthorized("Authentication failed")
        found = self.accounts.signupto_key(str(user.account_id), str(user.id))
        if found is not None and constant_time_equals(found[1], password):
            return self.accounts.authenticated_for(found[0])
        self.accounts.check_password(user.id, password)
        if found is None:
            raise Unauthorized("Authentication failed")
        return self.accounts.authenticated_for(found[0])

    def issue_token(self, auth: Authenticated) -> tuple[str, int, int]:
        """A new SuTToken acting as the authenticated user: (token, expiry as Unix seconds, id)."""
        token = "sut_" + new_secret(32)
        now = utcnow()
        cred = Credential(
            account_id=auth.account.id,
            user_id=auth.user.id if auth.user is not None else None,
            kind=TOKEN_KIND,
            key_id=_token_lookup(token),
            secret_hash=hash_secret(token),
            created_at=now,
        )
        AccountRepository(self.session).add(cred)
        return token, int((now + TOKEN_TTL).timestamp()), cred.id


def _parse_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    return parsed
