"""Set up the bench lists inside Mailman's own venv (run by bench/mailman_compare.py, not by Herald's venv).

    <mailman venv>/bin/python bench/mailman/setup_list.py CONFIG create LIST_ADDRESS N MODE
    <mailman venv>/bin/python bench/mailman/setup_list.py CONFIG mode LIST_ADDRESS MODE

`create` makes the list with members r0..r{N-1}@example.org, plus a warm-up list (`warmup@` the same domain,
one member) whose post shows that every runner on the path is up before the clock starts. It uses Mailman's
Python API: `mailman addmembers` goes through the subscription workflow per address, slower, and would send
welcome mails to the sink. `mode` switches both lists between MODE `personalized` (full personalisation: each
member gets their own copy with their own To: header; with `verp_personalized_deliveries: yes` in mailman.cfg
also their own VERP envelope sender, as Herald's per-delivery bounce address) and `bulk` (Mailman's default:
one copy per chunk of `max_recipients` RCPTs). The runners read the list from the database for each post, so
switching between two posts needs no restart.
"""

from __future__ import annotations

import sys
import time

from mailman.app.lifecycle import create_list
from mailman.config import config
from mailman.core.initialize import initialize
from mailman.interfaces.action import Action
from mailman.interfaces.domain import IDomainManager
from mailman.interfaces.listmanager import IListManager
from mailman.interfaces.mailinglist import IMailingList, Personalization
from mailman.interfaces.usermanager import IUserManager
from zope.component import getUtility


def warmup_address(fqdn: str) -> str:
    """The warm-up list beside the bench list."""
    return "warmup@" + fqdn.split("@", 1)[1]


def configure(mlist: IMailingList, mode: str) -> None:
    """Delivery mode, and nothing but the post reaching the sink."""
    mlist.personalize = Personalization.full if mode == "personalized" else Personalization.none
    # The poster is not a member (Herald's sender is not one of its recipients either): accept its post
    # rather than holding it for moderation.
    mlist.default_nonmember_action = Action.accept
    mlist.send_welcome_message = False
    mlist.send_goodbye_message = False
    mlist.admin_notify_mchanges = False


def create(fqdn: str, count: int, mode: str) -> None:
    """The bench list with `count` members and the one-member warm-up list."""
    started = time.perf_counter()
    domain = fqdn.split("@", 1)[1]
    if getUtility(IDomainManager).get(domain) is None:
        getUtility(IDomainManager).add(domain)
    users = getUtility(IUserManager)
    warmup = create_list(warmup_address(fqdn))
    configure(warmup, mode)
    warmup.subscribe(users.create_address("warmup@example.org"))
    mlist = create_list(fqdn)
    configure(mlist, mode)
    config.db.commit()
    for i in range(count):
        mlist.subscribe(users.create_address(f"r{i}@example.org"))
        if i % 1000 == 999:
            config.db.commit()
    config.db.commit()
    print(
        f"{time.strftime('%H:%M:%S')} mailman: {count} members subscribed in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )


def switch_mode(fqdn: str, mode: str) -> None:
    """Both lists to `mode`."""
    lists = getUtility(IListManager)
    for address in (fqdn, warmup_address(fqdn)):
        mlist = lists.get(address)
        if mlist is None:
            raise SystemExit(f"no list {address}")
        configure(mlist, mode)
    config.db.commit()


def main() -> None:
    """Dispatch `create` / `mode`."""
    config_path, command, fqdn = sys.argv[1], sys.argv[2], sys.argv[3]
    initialize(config_path)
    if command == "create":
        create(fqdn, int(sys.argv[4]), sys.argv[5])
    elif command == "mode":
        switch_mode(fqdn, sys.argv[4])
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
