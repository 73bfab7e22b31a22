"""Database triggers that make the log append-only, on PostgreSQL and SQLite.

Records refuse DELETE and TRUNCATE, and every UPDATE except the retention
purge: body cleared and purged set, every other column (hashes included)
unchanged. Merkle nodes and checkpoints refuse UPDATE, DELETE and TRUNCATE.
These stop application bugs and casual edits; an operator who disables them
is caught by verification against signed checkpoints."""

from __future__ import annotations

from typing import Any

RECORD_UNCHANGED = [
    "id",
    "log_id",
    "seq",
    "recorded_at_us",
    "event_type",
    "actor_type",
    "actor_id",
    "leaf_hash",
    "chain_hash",
]
RECORD_NULLABLE_UNCHANGED = ["agent_id", "event_id", "envelope_hash"]
FROZEN_TABLES = ["audit_merklenode", "audit_checkpoint"]


def _pg_purge_condition() -> str:
    same = [f"NEW.{c} = OLD.{c}" for c in RECORD_UNCHANGED]
    same += [f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in RECORD_NULLABLE_UNCHANGED]
    return " AND ".join(["OLD.purged = false", "NEW.purged = true", "NEW.body IS NULL", *same])


def _sqlite_purge_condition() -> str:
    same = [f"NEW.{c} = OLD.{c}" for c in RECORD_UNCHANGED]
    same += [f"NEW.{c} IS OLD.{c}" for c in RECORD_NULLABLE_UNCHANGED]
    return " AND ".join(["OLD.purged = 0", "NEW.purged = 1", "NEW.body IS NULL", *same])


def postgresql_install() -> list[str]:
    sql = [
        f"""
        CREATE OR REPLACE FUNCTION audit_record_guard() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND ({_pg_purge_condition()}) THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'append-only log: % on audit_record refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$ LANGUAGE plpgsql;
        """,
        """
        CREATE OR REPLACE FUNCTION audit_frozen_guard() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'append-only log: % on % refused', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$ LANGUAGE plpgsql;
        """,
        """CREATE OR REPLACE TRIGGER audit_record_guard_row BEFORE UPDATE OR DELETE ON audit_record
           FOR EACH ROW EXECUTE FUNCTION audit_record_guard()""",
        """CREATE OR REPLACE TRIGGER audit_record_guard_truncate BEFORE TRUNCATE ON audit_record
           FOR EACH STATEMENT EXECUTE FUNCTION audit_record_guard()""",
    ]
    for table in FROZEN_TABLES:
        sql += [
            f"""CREATE OR REPLACE TRIGGER {table}_guard_row BEFORE UPDATE OR DELETE ON {table}
               FOR EACH ROW EXECUTE FUNCTION audit_frozen_guard()""",
            f"""CREATE OR REPLACE TRIGGER {table}_guard_truncate BEFORE TRUNCATE ON {table}
               FOR EACH STATEMENT EXECUTE FUNCTION audit_frozen_guard()""",
        ]
    return sql


def postgresql_drop() -> list[str]:
    sql = [
        "DROP TRIGGER IF EXISTS audit_record_guard_row ON audit_record",
        "DROP TRIGGER IF EXISTS audit_record_guard_truncate ON audit_record",
    ]
    for table in FROZEN_TABLES:
        sql += [
            f"DROP TRIGGER IF EXISTS {table}_guard_row ON {table}",
            f"DROP TRIGGER IF EXISTS {table}_guard_truncate ON {table}",
        ]
    return sql


def sqlite_install() -> list[str]:
    sql = [
        """CREATE TRIGGER IF NOT EXISTS audit_record_no_delete BEFORE DELETE ON audit_record
           BEGIN SELECT RAISE(ABORT, 'append-only log: DELETE on audit_record refused'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS audit_record_no_update BEFORE UPDATE ON audit_record
           WHEN NOT ({_sqlite_purge_condition()})
           BEGIN SELECT RAISE(ABORT, 'append-only log: UPDATE on audit_record refused'); END""",
    ]
    for table in FROZEN_TABLES:
        sql += [
            f"""CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
               BEGIN SELECT RAISE(ABORT, 'append-only log: DELETE on {table} refused'); END""",
            f"""CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
               BEGIN SELECT RAISE(ABORT, 'append-only log: UPDATE on {table} refused'); END""",
        ]
    return sql


def sqlite_drop() -> list[str]:
    names = ["audit_record_no_delete", "audit_record_no_update"]
    for table in FROZEN_TABLES:
        names += [f"{table}_no_delete", f"{table}_no_update"]
    return [f"DROP TRIGGER IF EXISTS {n}" for n in names]


def _statements(vendor: str, install: bool) -> list[str]:
    if vendor == "postgresql":
        return postgresql_install() if install else postgresql_drop()
    if vendor == "sqlite":
        return sqlite_install() if install else sqlite_drop()
    raise RuntimeError(f"no append-only triggers for database vendor {vendor!r}")


def install(connection: Any) -> None:
    with connection.cursor() as cursor:
        for statement in _statements(connection.vendor, True):
            cursor.execute(statement)


def drop(connection: Any) -> None:
    with connection.cursor() as cursor:
        for statement in _statements(connection.vendor, False):
            cursor.execute(statement)
