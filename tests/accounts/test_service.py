"""Accounts, users and every credential scheme: hashed at rest, checked in constant time."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from herald.accounts.models import Credential
from herald.accounts.service import AccountService
from herald.container import Container
from herald.errors import NotFound, Unauthorized


def test_credentials_authenticate_and_are_not_stored_in_plain(container: Container, account: dict[str, Any]) -> None:
    with container.transaction() as s:
        svc = AccountService(s, container.cipher)
        aid = account["account_id"]
        assert svc.authenticate_token(account["api_token"]).user.id == account["user_id"]  # type: ignore[union-attr]
        assert svc.authenticate_allclients(str(aid), account["allclients"]["apikey"]).account.id == aid
        assert svc.authenticate_mailkit(str(aid), account["mailkit"]["client_md5"]).account.id == aid
        assert svc.authenticate_skycore(account["skycore"]["api_key"]).account.id == aid
        alls = account["alls"]
        assert svc.authenticate_alls(alls["public_key"], alls["secret_key"]).account.id == aid
        cred, key = svc.signupto_key(str(aid), str(account["user_id"]))  # type: ignore[misc]
        assert key == account["signupto"]["api_key"]
        stored = " ".join(f"{c.key_id} {c.secret_hash} {c.secret_enc}" for c in s.scalars(select(Credential)))
        for secret in (
            account["api_token"],
            account["allclients"]["apikey"],
            account["mailkit"]["client_md5"],
            account["skycore"]["api_key"],
            alls["secret_key"],
            account["signupto"]["api_key"],
        ):
            assert secret not in stored


@pytest.mark.parametrize("scheme", ["token", "allclients", "mailkit", "skycore", "alls"])
def test_wrong_secret_is_refused(container: Container, account: dict[str, Any], scheme: str) -> None:
    aid = str(account["account_id"])
    with container.transaction() as s:
        svc = AccountService(s, container.cipher)
        calls = {
            "token": lambda: svc.authenticate_token("hrl_wrong"),
            "allclients": lambda: svc.authenticate_allclients(aid, "0" * 32),
            "mailkit": lambda: svc.authenticate_mailkit(aid, "wrong"),
            "skycore": lambda: svc.authenticate_skycore("wrong"),
            "alls": lambda: svc.authenticate_alls(account["alls"]["public_key"], "wrong"),
        }
        with pytest.raises(Unauthorized):
            calls[scheme]()


def test_keys_of_one_account_do_not_open_another(
    container: Container, account: dict[str, Any], other_account: dict[str, Any]
) -> None:
    with container.transaction() as s:
        svc = AccountService(s, container.cipher)
        with pytest.raises(Unauthorized):
            svc.authenticate_allclients(str(other_account["account_id"]), account["allclients"]["apikey"])


def test_user_passwords_are_argon2(container: Container, account: dict[str, Any]) -> None:
    with container.transaction() as s:
        svc = AccountService(s, container.cipher)
        svc.set_password(account["account_id"], account["user_id"], "correct horse")
        assert svc.check_password(account["user_id"], "correct horse").id == account["user_id"]
        with pytest.raises(Unauthorized):
            svc.check_password(account["user_id"], "wrong password")
        with pytest.raises(NotFound):
            svc.create_user(999, "ghost")
