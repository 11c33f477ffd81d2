"""SQL of the PostgreSQL bulk import: COPY into a temporary stage, then one set-based upsert per batch.

Per-row work stays inside PostgreSQL, where it is cheapest. The largest remaining per-row cost there is the
foreign-key triggers: every inserted contact and address runs its own `SELECT ... FOR KEY SHARE` on the
account (and the contact type), about a third of the statement. A batch therefore takes those same
`FOR KEY SHARE` locks itself, once, on exactly the rows its foreign keys reference, checks that they exist,
and runs the one statement with triggers off (`session_replication_role = replica`, what pg_restore and
pgloader use for bulk loads). That is only done when it is as safe as the triggers: the role may set the
parameter, the tables have no triggers other than their foreign keys', and those foreign keys are exactly the
ones locked here (read from the catalog, compared with the models). Otherwise the triggers run as usual.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, NamedTuple

from sqlalchemy import Connection, Table, TextClause, UniqueConstraint, text
from sqlalchemy.exc import IntegrityError

from herald.consent.models import Address
from herald.consent.rules import UNKNOWN
from herald.contacts.models import CONTACT_FIELDS, Contact
from herald.errors import NotFound

TABLES = "(CAST('contacts' AS regclass), CAST('addresses' AS regclass))"
# The foreign keys a batch checks itself: (table, column, referenced table). Anything else in the catalog or
# the models means the triggers stay on.
LOCKED_FOREIGN_KEYS = frozenset(
    {
        ("contacts", "account_id", "accounts"),
        ("contacts", "contact_type_id", "contact_types"),
        ("addresses", "account_id", "accounts"),
    }
)

# The unique (account_id, email) constraints by name, as the naming convention spells them: a violation of
# one of these (and of nothing else) sends an expect_new batch to the upsert.
EMAIL_KEYS = {
    str(constraint.name): table.name
    for table in (Contact.__table__, Address.__table__)
    if isinstance(table, Table)
    for constraint in table.constraints
    if isinstance(constraint, UniqueConstraint) and [c.name for c in constraint.columns] == ["account_id", "email"]
}


def _model_foreign_keys() -> frozenset[tuple[str, str, str]]:
    """The single-column foreign keys of the two tables a batch writes, as the models declare them."""
    tables = (Contact.__table__, Address.__table__)
    return frozenset(
        (fk.parent.table.name, fk.parent.name, fk.target_fullname.split(".")[0])
        for t in tables
        for fk in t.foreign_keys
    )


class BatchWritten(NamedTuple):
    """What import_contacts did: contacts created, the `held` emails among them, and whether an expect_new
    batch met an existing contact or address (and was upserted instead)."""

    created: int
    new_held: set[str]
    met_existing: bool


def _upsert_statement(columns: Sequence[str], fields: str) -> TextClause:
    """Contacts upserted by (account, email), `unknown` addresses added for the new ones (see import_contacts)."""
    names = "".join(f"{n}, " for n in columns)
    sets = "".join(f"{n} = COALESCE(excluded.{n}, contacts.{n}), " for n in columns)
    return text(
        "WITH upserted AS ("
        f" INSERT INTO contacts (account_id, email, {names}fields, created_at, updated_at)"
        f" SELECT :account_id, email, {names}{fields}, now(), now() FROM herald_import_stage"
        " ON CONFLICT (account_id, email) DO UPDATE SET"
        f" {sets}fields = contacts.fields || excluded.fields, updated_at = now()"
        # xmax is 0 exactly for a freshly inserted row version: that tells new contacts from updated ones.
        " RETURNING email, (xmax = 0) AS inserted"
        "), addresses_added AS ("
        " INSERT INTO addresses (account_id, email, status, created_at, updated_at)"
        " SELECT :account_id, email, :unknown, now(), now() FROM upserted"
        " WHERE inserted AND email <> ALL(CAST(:held AS text[]))"
        " ON CONFLICT (account_id, email) DO NOTHING"
        ")"
        " SELECT count(*) FILTER (WHERE inserted),"
        " array_agg(email) FILTER (WHERE inserted AND email = ANY(CAST(:held AS text[])))"
        " FROM upserted"
    )


def _insert_statement(columns: Sequence[str], fields: str) -> TextClause:
    """The same for a batch of new emails only: plain inserts, which an existing email makes fail."""
    names = "".join(f"{n}, " for n in columns)
    return text(
        "WITH inserted AS ("
        f" INSERT INTO contacts (account_id, email, {names}fields, created_at, updated_at)"
        f" SELECT :account_id, email, {names}{fields}, now(), now() FROM herald_import_stage"
        " RETURNING email"
        "), addresses_added AS ("
        " INSERT INTO addresses (account_id, email, status, created_at, updated_at)"
        " SELECT :account_id, email, :unknown, now(), now() FROM inserted"
        " WHERE email <> ALL(CAST(:held AS text[]))"
        ")"
        " SELECT count(*), array_agg(email) FILTER (WHERE email = ANY(CAST(:held AS text[]))) FROM inserted"
    )


def _conflicting_email(exc: IntegrityError) -> str | None:
    """The table whose (account_id, email) key refused an insert, or None for any other integrity error."""
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    return EMAIL_KEYS.get(constraint) if isinstance(constraint, str) else None


class BulkImportRepository:
    """PostgreSQL statements of the contacts import, on one connection inside the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def foreign_keys_lockable(self) -> bool:
        """Whether a batch may take its foreign-key locks itself and run without triggers (see module doc)."""
        if _model_foreign_keys() != LOCKED_FOREIGN_KEYS:
            return False
        superuser, version, triggers, rules = self.conn.execute(
            text(
                "SELECT current_setting('is_superuser') = 'on', CAST(current_setting('server_version_num') AS int),"
                " (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN " + TABLES + "),"
                " (SELECT count(*) FROM pg_rewrite WHERE ev_class IN " + TABLES + ")"
            )
        ).one()
        # Since PostgreSQL 15 a non-superuser may be granted the parameter (GRANT SET ON PARAMETER ...).
        allowed = superuser or (
            version >= 150000
            and self.conn.execute(text("SELECT has_parameter_privilege('session_replication_role', 'SET')")).scalar()
        )
        if not allowed:
            return False
        catalog = self.conn.execute(
            text(
                "SELECT CAST(c.conrelid AS regclass)::text, a.attname, CAST(c.confrelid AS regclass)::text,"
                " cardinality(c.conkey) FROM pg_constraint c"
                " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
                " WHERE c.contype = 'f' AND c.conrelid IN " + TABLES
            )
        ).all()
        single = all(width == 1 for *_, width in catalog)
        found = frozenset((table, column, target) for table, column, target, _ in catalog)
        return triggers == 0 and rules == 0 and single and found == LOCKED_FOREIGN_KEYS

    def import_contacts(
        self,
        account_id: int,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        custom: Sequence[str],
        *,
        held: Collection[str] = (),
        lock_foreign_keys: bool = False,
        expect_new: bool = False,
    ) -> BatchWritten:
        """Upsert a batch: answers how many contacts it created and which `held` emails were among them.

        Each row is [email, one value per `columns`, one per `custom` (None = empty)], emails distinct. Rows
        are COPYed into a temporary stage, then ONE statement upserts the contacts (an empty value keeps what
        the contact had, custom fields merge, as in ContactRepository.upsert_contacts) and creates `unknown`
        addresses for the contacts it created, except the `held` emails, which the caller routes through the
        consent engine. `lock_foreign_keys` (only when foreign_keys_lockable()) checks the foreign keys once
        per batch instead of once per row.

        `expect_new` first tries a plain INSERT of every row, contacts and addresses, inside a savepoint:
        ON CONFLICT's per-row pre-check of the unique index and its speculative insertion are about a quarter
        of the statement. If any contact or address already exists, its unique index refuses the insert (after
        waiting for a concurrent writer of the same email, as ON CONFLICT would), the savepoint is rolled back
        and the batch upserted as usual: the unique constraints decide either way, so nothing is lost or
        duplicated whatever another writer does.
        """
        unknown = set(columns) - set(CONTACT_FIELDS) - {"contact_type_id"}
        if unknown:
            raise ValueError(f"not contact columns: {sorted(unknown)}")
        self._stage(rows, columns, len(custom))
        params: dict[str, Any] = {"account_id": account_id, "unknown": UNKNOWN, "held": list(held)}
        pairs = []
        for i, name in enumerate(custom):
            params[f"k{i}"] = name
            pairs.append(f"CAST(:k{i} AS text), c{i}")
        # jsonb_build_object takes at most 100 arguments: 50 fields per call, concatenated. Nulls are empty cells.
        chunks = [f"jsonb_build_object({', '.join(pairs[i : i + 50])})" for i in range(0, len(pairs), 50)]
        fields = f"jsonb_strip_nulls({' || '.join(chunks)})" if chunks else "CAST('{}' AS jsonb)"
        with self._foreign_keys_checked_here(account_id, rows, columns) if lock_foreign_keys else nullcontext():
            if expect_new:
                try:
                    with self.conn.begin_nested():
                        created, new_held = self.conn.execute(_insert_statement(columns, fields), params).one()
                    return BatchWritten(int(created), set(new_held or ()), met_existing=False)
                except IntegrityError as exc:
                    if _conflicting_email(exc) is None:
                        raise
            created, new_held = self.conn.execute(_upsert_statement(columns, fields), params).one()
        return BatchWritten(int(created), set(new_held or ()), met_existing=expect_new)

    @contextmanager
    def _foreign_keys_checked_here(
        self, account_id: int, rows: Sequence[Sequence[Any]], columns: Sequence[str]
    ) -> Iterator[None]:
        """Take the foreign keys' locks for the batch, then run its statements without the per-row triggers."""
        type_index = 1 + list(columns).index("contact_type_id") if "contact_type_id" in columns else None
        type_ids = sorted({row[type_index] for row in rows if row[type_index] is not None}) if type_index else []
        self._lock_referenced(account_id, type_ids)
        role = self.conn.execute(text("SELECT current_setting('session_replication_role')")).scalar()
        self.conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        try:
            yield
        finally:
            # Everything else in this transaction (the consent engine's writes) runs with its triggers again.
            self.conn.execute(text("SELECT set_config('session_replication_role', :role, true)"), {"role": role})

    def _stage(self, rows: Sequence[Sequence[Any]], columns: Sequence[str], custom_count: int) -> None:
        """A fresh temporary stage (dropped at commit) filled by COPY; custom names never become SQL names."""
        stage_columns = [
            "email text",
            *(f"{n} integer" if n in ("age", "contact_type_id") else f"{n} text" for n in columns),
            *(f"c{i} text" for i in range(custom_count)),
        ]
        self.conn.exec_driver_sql("DROP TABLE IF EXISTS pg_temp.herald_import_stage")
        self.conn.exec_driver_sql(f"CREATE TEMP TABLE herald_import_stage ({', '.join(stage_columns)}) ON COMMIT DROP")
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy("COPY herald_import_stage FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _lock_referenced(self, account_id: int, type_ids: list[int]) -> None:
        """The locks the foreign-key triggers would take, once: the referenced rows must exist and stay."""
        locked = self.conn.execute(
            text("SELECT id FROM accounts WHERE id = :id FOR KEY SHARE"), {"id": account_id}
        ).all()
        if not locked:
            raise NotFound("account", account_id)
        if type_ids:
            found = set(
                self.conn.execute(
                    text("SELECT id FROM contact_types WHERE id = ANY(:ids) FOR KEY SHARE"), {"ids": type_ids}
                ).scalars()
            )
            missing = sorted(set(type_ids) - found)
            if missing:
                raise NotFound("contact type", missing[0])
