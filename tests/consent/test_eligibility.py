"""The eligibility rule as one SQL expression, on both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from herald.actor import Actor
from herald.consent import rules
from herald.consent.eligibility import eligible, skip_reason
from herald.consent.models import Address, Topic
from herald.consent.service import ConsentService
from herald.container import Container
from herald.db.base import utcnow
from herald.lists.models import MailingList, Subscription


def test_eligible_and_skip_reason_agree(container: Container, account: dict[str, Any]) -> None:
    aid = account["account_id"]
    with container.transaction() as s:
        c = ConsentService(s, Actor(account_id=aid, source="api"))
        topic = Topic(account_id=aid, name="News")
        lst = MailingList(account_id=aid, name="L", double_opt_in=True)
        s.add_all([topic, lst])
        s.flush()
        for email in [
            "ok@x.com",
            "out@x.com",
            "temp@x.com",
            "ended@x.com",
            "bounce@x.com",
            "spam@x.com",
            "topic@x.com",
            "unconfirmed@x.com",
            "in@x.com",
        ]:
            c.ensure(email)
        c.set_status("out@x.com", rules.OPTED_OUT)
        c.set_status("temp@x.com", rules.OPTED_OUT, until=utcnow() + timedelta(days=3))
        ended = c.set_status("ended@x.com", rules.OPTED_OUT, until=utcnow() + timedelta(days=3))
        ended.opted_out_until = utcnow() - timedelta(minutes=1)
        c.set_status("bounce@x.com", rules.BOUNCED)
        c.set_status("spam@x.com", rules.SPAM_REPORTED)
        c.unsubscribe_topic(c.get("topic@x.com"), topic.id)
        c.set_status("in@x.com", rules.OPTED_IN)
        for email in ["ok@x.com", "in@x.com", "ended@x.com", "topic@x.com"]:
            s.add(Subscription(account_id=aid, list_id=lst.id, address_id=c.get(email).id, status="active"))
        s.add(
            Subscription(account_id=aid, list_id=lst.id, address_id=c.get("unconfirmed@x.com").id, status="unconfirmed")
        )
        s.flush()
        now = utcnow()

        def run(**kw: Any) -> dict[str, str | None]:
            rows = s.execute(select(Address.email, skip_reason(now, **kw)).where(Address.account_id == aid))
            reasons: dict[str, str | None] = {str(e): r for e, r in rows}
            ok = set(s.scalars(select(Address.email).where(Address.account_id == aid, eligible(now, **kw))))
            assert ok == {e for e, r in reasons.items() if r is None}
            return reasons

        plain = run()
        assert plain["out@x.com"] == "opted_out" and plain["temp@x.com"] == "opted_out"
        assert plain["ended@x.com"] is None  # an ended temporary opt-out no longer suppresses
        assert plain["bounce@x.com"] == "bounced" and plain["spam@x.com"] == "spam_reported"
        assert plain["topic@x.com"] is None
        assert run(topic_id=topic.id)["topic@x.com"] == "topic_unsubscribed"
        on_list = run(list_id=lst.id)
        assert on_list["unconfirmed@x.com"] == "not_subscribed" and on_list["ok@x.com"] is None
        strict = run(require_optin=True)
        assert strict["ok@x.com"] == "not_opted_in" and strict["in@x.com"] is None
