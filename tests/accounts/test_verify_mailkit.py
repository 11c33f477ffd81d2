"""The Mailkit getstatus fast path authenticates exactly as authenticate_mailkit does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, update

from herald.accounts.models import Credential, User
from herald.accounts.service import MAILKIT, AccountService
from herald.container import Container
from herald.errors import Unauthorized


def test_right_secret_gives_the_credential_and_account(container: Container, account: dict[str, Any]) -> None:
    aid = account["account_id"]
    with container.transaction() as s:
        svc = AccountService(s, container.cipher)
        cred_id, account_id = svc.verify_mailkit(str(aid), account["mailkit"]["client_md5"])
        full = svc.authenticate_mailkit(str(aid), account["mailkit"]["client_md5"])
    assert (cred_id, account_id) == (full.credential.id, aid)


@pytest.mark.parametrize("which", ["wrong secret", "unknown id", "other tenant's secret", "empty secret"])
def test_refused_like_the_full_check(
    container: Container, account: dict[str, Any], other_account: dict[str, Any], which: str
) -> None:
    client_id, md5 = str(account["account_id"]), account["mailkit"]["client_md5"]
    if which == "wrong secret":
        md5 = md5[:-1] + ("0" if md5[-1] != "0" else "1")
    elif which == "unknown id":
        client_id = "999999"
    elif which == "other tenant's secret":
        md5 = other_account["mailkit"]["client_md5"]
    else:
        md5 = ""
    with container.transaction() as s:
        svc = AccountService(s, container.cipher)
        with pytest.raises(Unauthorized):
            svc.verify_mailkit(client_id, md5)
        with pytest.raises(Unauthorized):
            svc.authenticate_mailkit(client_id, md5)


def test_a_credential_of_a_removed_user_is_refused(container: Container, account: dict[str, Any]) -> None:
    aid, md5 = account["account_id"], account["mailkit"]["client_md5"]
    with container.transaction() as s:
        # Bind the Mailkit credential to the admin user, then remove the user (the credential goes with it).
        s.execute(
            update(Credential)
            .where(Credential.kind == MAILKIT, Credential.account_id == aid)
            .values(user_id=account["user_id"])
        )
    with container.transaction() as s:
        svc = AccountService(s, container.cipher)
        assert svc.verify_mailkit(str(aid), md5)[1] == aid
    with container.transaction() as s:
        s.execute(delete(User).where(User.id == account["user_id"]))
    with container.transaction() as s:
        svc = AccountService(s, container.cipher)
        for check in (svc.verify_mailkit, svc.authenticate_mailkit):
            with pytest.raises(Unauthorized):
                check(str(aid), md5)
