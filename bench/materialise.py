"""Audience materialisation: a send's launch (INSERT … SELECT into deliveries) vs a bare hand-written one.

    python bench/materialise.py [-n 1000000] [--db sqlite|pg|postgresql://…/postgres] [--repeat 2]

Builds one account with n contacts of one contact type and their addresses: 5 % opted out, 1 % bounced,
10 % unsubscribed from the send's topic. Then, per repeat, in the same run:
- the floor: a hand-written `INSERT … SELECT` of the same rows (same joins, same eligibility CASE, the same
  token expression as Herald's: on PostgreSQL the id from the sequence and a keyed SHA-256, on SQLite 16
  random bytes) into a table with the same columns, a primary key and no other index, constraint or foreign
  key, under the same per-transaction settings Herald's launch uses on PostgreSQL (jit off, 64 MB work_mem);
- Herald: a ready send launched by the worker's launcher (`launch_one`), i.e. SendService.launch with
  the eligibility rule, skip reasons, per-row tokens, and the real `deliveries` table with its indexes.
Prints one JSON line per repeat with both times and their ratio. On a local PostgreSQL it also reports the
CPU seconds the database's backends spent on each (from /proc): unlike wall time, that barely moves with the
load other users put on the machine.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, bindparam, text

sys.path.insert(0, str(Path(__file__).parent))
from common import cpu_seconds, emit, scratch_db  # noqa: E402

from herald.accounts.service import AccountService  # noqa: E402
from herald.consent.models import Topic  # noqa: E402
from herald.contacts.models import ContactType  # noqa: E402
from herald.container import Container  # noqa: E402
from herald.db.base import UTCDateTime  # noqa: E402
from herald.db.migrate import upgrade  # noqa: E402
from herald.sends.launcher import launch_one  # noqa: E402
from herald.sends.models import STATUS_READY, SingleSend  # noqa: E402
from herald.settings import Settings  # noqa: E402
from herald.templates.models import Sender  # noqa: E402

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def series(pg: bool, n: int) -> tuple[str, str]:
    """A FROM clause yielding i = 1..n, and the SQL prefix it needs."""
    if pg:
        return "", f"generate_series(1, {n}) AS s(i)"
    return f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) ", "s"


def populate(container: Container, n: int) -> tuple[int, int, int, int]:
    """Account, contact type, topic, sender; n contacts and addresses written by set-based SQL."""
    with container.transaction() as session:
        account_id = AccountService(session, container.cipher).create_account("bench")["account_id"]
        ctype = ContactType(account_id=account_id, name="all")
        topic = Topic(account_id=account_id, name="news")
        sender = Sender(account_id=account_id, from_email="news@shop.example", from_name="Shop", address="1 Main")
        session.add_all([ctype, topic, sender])
        session.flush()
        ids = account_id, ctype.id, topic.id, sender.id
    pg = container.engine.dialect.name == "postgresql"
    prefix, source = series(pg, n)
    concat = "'r' || i || '@example.org'"
    now = bindparam("now", NOW, type_=UTCDateTime())
    with container.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO contacts (account_id, email, contact_type_id, first_name, city, fields, created_at, "
                f"updated_at) {prefix}SELECT :a, {concat}, :t, 'N' || i, 'Berlin', '{{}}', :now, :now FROM {source}"
            ).bindparams(now, a=ids[0], t=ids[1])
        )
        conn.execute(
            text(
                f"INSERT INTO addresses (account_id, email, status, created_at, updated_at) {prefix}SELECT :a, "
                f"{concat}, CASE WHEN i % 20 = 0 THEN 'opted_out' WHEN i % 100 = 1 THEN 'bounced' "
                f"ELSE 'opted_in' END, :now, :now FROM {source}"
            ).bindparams(now, a=ids[0])
        )
        conn.execute(
            text(
                "INSERT INTO topic_unsubscribes (address_id, topic_id, at) SELECT id, :topic, :now FROM addresses "
                "WHERE account_id = :a AND id % 10 = 2"
            ).bindparams(now, a=ids[0], topic=ids[2])
        )
    with container.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return ids


FLOOR = """
INSERT INTO floor_deliveries ({id_column}account_id, send_id, address_id, contact_id, email, status, attempts,
                              next_attempt_at, token, error)
SELECT {id_value}:a, :send, x.id, x.cid, x.email,
       CASE WHEN ok THEN 'queued' ELSE 'suppressed' END, 0, NULL, {token},
       CASE WHEN ok THEN NULL ELSE reason END
FROM (
  SELECT ad.id AS id, ad.email AS email, c.id AS cid, {sequence}
         ad.status NOT IN ('opted_out', 'bounced', 'spam_reported') AND tu.address_id IS NULL AS ok,
         CASE WHEN ad.status = 'spam_reported' THEN 'spam_reported' WHEN ad.status = 'bounced' THEN 'bounced'
              WHEN ad.status = 'opted_out' THEN 'opted_out' WHEN tu.address_id IS NOT NULL
              THEN 'topic_unsubscribed' END AS reason
  FROM contacts c
  JOIN addresses ad ON ad.account_id = c.account_id AND ad.email = c.email
  LEFT JOIN topic_unsubscribes tu ON tu.address_id = ad.id AND tu.topic_id = :topic
  WHERE c.account_id = :a AND c.contact_type_id = :t
  {fence}
) AS x
"""
PG_TOKEN = "lpad(to_hex(x.did), 8, '0') || substr(encode(sha256(:key || int4send(x.did)), 'hex'), 1, 24)"


def backend_cpu(engine: Engine) -> float | None:
    """CPU seconds used so far by the backends connected to this PostgreSQL database, if it runs here."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars()
        total = 0.0
        for pid in pids:
            used = cpu_seconds(pid)
            if used is None:
                return None  # a remote server, or not ours to read
            total += used
    return total


def floor_run(engine: Engine, ids: tuple[int, int, int, int]) -> tuple[float, float | None]:
    """Seconds (and backend CPU seconds) for the bare INSERT … SELECT into a table with deliveries' columns."""
    pg = engine.dialect.name == "postgresql"
    if pg:
        sql = FLOOR.format(
            id_column="id, ",
            id_value="x.did, ",
            sequence="nextval('floor_deliveries_id_seq')::integer AS did,",
            token=PG_TOKEN,
            fence="OFFSET 0",
        )
    else:
        sql = FLOOR.format(id_column="", id_value="", sequence="", token="lower(hex(randomblob(16)))", fence="")
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS floor_deliveries"))
        conn.execute(
            text(
                "CREATE TABLE floor_deliveries (id INTEGER PRIMARY KEY, account_id INTEGER, send_id INTEGER, "
                "address_id INTEGER, contact_id INTEGER, email VARCHAR(320), status VARCHAR(20), attempts INTEGER, "
                "next_attempt_at TIMESTAMP, token VARCHAR(32), error TEXT)"
                if not pg
                else "CREATE TABLE floor_deliveries (id SERIAL PRIMARY KEY, account_id INTEGER, send_id INTEGER, "
                "address_id INTEGER, contact_id INTEGER, email VARCHAR(320), status VARCHAR(20), attempts INTEGER, "
                "next_attempt_at TIMESTAMPTZ, token VARCHAR(32), error TEXT)"
            )
        )
    params: dict[str, object] = {"a": ids[0], "send": 0, "topic": ids[2], "t": ids[1]}
    if pg:
        params["key"] = secrets.token_bytes(32)
    cpu = backend_cpu(engine)
    started = time.perf_counter()
    with engine.begin() as conn:
        if pg:
            conn.execute(text("SET LOCAL jit = off"))
            conn.execute(text("SET LOCAL work_mem = '64MB'"))
        conn.execute(text(sql), params)
    elapsed = time.perf_counter() - started
    after = backend_cpu(engine)
    return elapsed, (after - cpu if cpu is not None and after is not None else None)


def herald_run(container: Container, ids: tuple[int, int, int, int]) -> tuple[float, float | None, dict[str, int]]:
    """Seconds (and backend CPU seconds) for the launcher to launch one ready send to the whole contact type."""
    account_id, type_id, topic_id, sender_id = ids
    with container.transaction() as session:
        send = SingleSend(
            account_id=account_id,
            utr=str(uuid.uuid4()),
            name="bench",
            subject="Hi",
            template_html="<p>Hi</p>",
            sender_id=sender_id,
            topic_id=topic_id,
            recipients=[{"table": "contacts_", "id": type_id}],
            status=STATUS_READY,
            scheduled_at=NOW,
        )
        session.add(send)
    cpu = backend_cpu(container.engine)
    started = time.perf_counter()
    launched = launch_one(container, now=NOW)
    elapsed = time.perf_counter() - started
    after = backend_cpu(container.engine)
    assert launched == send.id, "the send did not launch"
    with container.sessions() as session:
        skipped = session.get(SingleSend, send.id).skipped  # type: ignore[union-attr]
    return elapsed, (after - cpu if cpu is not None and after is not None else None), skipped


def clear(container: Container) -> None:
    """Remove the previous repeat's deliveries so every repeat inserts into an equally empty table."""
    pg = container.engine.dialect.name == "postgresql"
    with container.engine.begin() as conn:
        conn.execute(text("DELETE FROM deliveries"))
        conn.execute(text("DELETE FROM single_sends"))
    if pg:
        with container.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--db", default="sqlite", help="sqlite, pg, or an admin PostgreSQL URL")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with scratch_db(args.db) as url:
        container = Container.build(Settings(database_url=url, secret_key="bench", base_url="https://h.example"))
        upgrade(container.engine)
        started = time.perf_counter()
        ids = populate(container, args.n)
        populate_s = time.perf_counter() - started
        for i in range(args.repeat):
            floor, floor_cpu = floor_run(container.engine, ids)
            herald, herald_cpu, skipped = herald_run(container, ids)
            floor_after, floor_cpu_after = floor_run(container.engine, ids)
            floor_mean = (floor + floor_after) / 2
            result = {
                "bench": "materialise",
                "db": container.engine.dialect.name,
                "n": args.n,
                "repeat": i + 1,
                "populate_s": round(populate_s, 1),
                "floor_s": round(floor_mean, 2),
                "herald_s": round(herald, 2),
                "ratio_herald_to_floor": round(herald / floor_mean, 2),
                "skipped": skipped,
            }
            if floor_cpu is not None and floor_cpu_after is not None and herald_cpu is not None:
                floor_cpu_mean = (floor_cpu + floor_cpu_after) / 2
                result["floor_cpu_s"] = round(floor_cpu_mean, 2)
                result["herald_cpu_s"] = round(herald_cpu, 2)
                result["cpu_ratio_herald_to_floor"] = round(herald_cpu / floor_cpu_mean, 2)
            emit(result)
            clear(container)
        container.engine.dispose()


if __name__ == "__main__":
    main()
