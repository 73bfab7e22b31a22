"""compliance_site.db.Batch: pipelined statements, and runs of independent
statements sent as one (PostgreSQL), with the semantics of running them one by one."""

from __future__ import annotations

from contextlib import ExitStack
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from compliance_site.db import Batch, fetch_prepared, numbered
from surveillance.models import FirmExposure, MarketRisk

pytestmark = pytest.mark.django_db

M = MarketRisk._meta.db_table
X = FirmExposure._meta.db_table


def _insert_market(batch: Batch, market: str, position: str, **kw: bool) -> int:
    return batch.add(
        f"INSERT INTO {M} (market, position, open_buy, open_sell) VALUES (%s, %s, 0, 0)"
        " RETURNING market, position",
        [market, Decimal(position)],
        **kw,
    )


def test_independent_statements_all_take_effect_and_the_wanted_rows_come_back():
    FirmExposure.objects.update_or_create(name="firm", defaults={"gross": Decimal(5)})
    with transaction.atomic():
        batch = Batch()
        a = _insert_market(batch, "A", "1", fetch=True, independent=True)
        _insert_market(batch, "B", "2", independent=True)
        gross = f"UPDATE {X} SET gross = gross + %s WHERE name = %s"
        batch.add(gross, [Decimal(3), "firm"], independent=True)
        c = _insert_market(batch, "C", "3", fetch=True, independent=True)
        # Not independent: must see what the statements before it wrote.
        seen = batch.add(f"SELECT COUNT(*), SUM(position) FROM {M}", fetch=True)
        rows = batch.run()
    assert rows[a] == ("A", Decimal(1))
    assert rows[c] == ("C", Decimal(3))
    assert rows[seen] == (3, Decimal(6))
    assert FirmExposure.objects.get(name="firm").gross == Decimal(8)
    assert set(MarketRisk.objects.values_list("market", flat=True)) == {"A", "B", "C"}


@pytest.mark.postgres
def test_on_postgresql_a_run_of_independent_statements_is_one_statement():
    batch = Batch()
    _insert_market(batch, "A", "1", fetch=True, independent=True)
    _insert_market(batch, "B", "2", independent=True)
    _insert_market(batch, "C", "3", fetch=True, independent=True)  # a second wanted row
    batch.add(f"SELECT COUNT(*) FROM {M}", fetch=True)
    _insert_market(batch, "D", "4", independent=True)
    sent: list[str] = []

    def watch(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        sent.append(sql)
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.execute_wrapper(watch):
        rows = batch.run()
    # A+B together, C alone (one wanted row per statement), the SELECT, D.
    assert len(sent) == 4, sent
    assert sent[0].startswith("WITH _s0 AS (INSERT")
    assert rows[4 - 1] == (3,)


@pytest.mark.postgres
def test_a_statement_with_its_own_with_queries_joins_a_fused_one():
    FirmExposure.objects.update_or_create(name="firm", defaults={"gross": Decimal(5)})
    MarketRisk.objects.create(market="M", position=1, open_buy=0, open_sell=0)

    def move(batch: Batch, name: str, by: str) -> None:
        # The gross moves by the market's position change, read before and after.
        batch.add(
            f"UPDATE {X} SET gross = gross - (SELECT v FROM {name}_before)"
            f" + (SELECT v FROM {name}_after) WHERE name = 'firm'",
            ["M", Decimal(by), "M"],
            independent=True,
            ctes=[
                (f"{name}_before", f"SELECT position AS v FROM {M} WHERE market = %s"),
                (
                    f"{name}_after",
                    f"UPDATE {M} SET position = position + %s WHERE market = %s"
                    " RETURNING position AS v",
                ),
            ],
        )

    sent: list[str] = []

    def watch(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        sent.append(sql)
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.execute_wrapper(watch):
        batch = Batch()
        _insert_market(batch, "A", "1", independent=True)
        move(batch, "_m", "2")
        _insert_market(batch, "B", "2", fetch=True, independent=True)
        rows = batch.run()
    assert len(sent) == 1, sent  # one statement, the WITH queries hoisted into it
    assert rows[2] == ("B", Decimal(2))
    assert MarketRisk.objects.get(market="M").position == 3
    assert FirmExposure.objects.get(name="firm").gross == Decimal(7)

    # Alone, or beside a statement using the same names, it gets a statement of its own.
    sent.clear()
    with transaction.atomic(), connection.execute_wrapper(watch):
        batch = Batch()
        move(batch, "_m", "1")
        move(batch, "_m", "1")
        batch.run()
    assert len(sent) == 2, sent
    assert all(sql.startswith("WITH _m_before AS") for sql in sent), sent
    assert MarketRisk.objects.get(market="M").position == 5
    assert FirmExposure.objects.get(name="firm").gross == Decimal(9)


def test_an_error_in_a_fused_statement_fails_the_batch_and_stores_nothing():
    MarketRisk.objects.create(market="TAKEN")
    with pytest.raises(IntegrityError), transaction.atomic():  # noqa: PT012 (rollback)
        batch = Batch()
        _insert_market(batch, "NEW", "1", independent=True)
        _insert_market(batch, "TAKEN", "2", independent=True)
        batch.run()
    assert list(MarketRisk.objects.values_list("market", flat=True)) == ["TAKEN"]


def test_independent_statements_refuse_named_parameters_and_their_own_with():
    batch = Batch()
    with pytest.raises(ValueError, match="positional"):
        batch.add("UPDATE t SET a = %(a)s", {"a": 1}, independent=True)
    with pytest.raises(ValueError, match="WITH"):
        batch.add("WITH x AS (SELECT 1) UPDATE t SET a = 1", [], independent=True)
    assert batch.statements == []


def test_placeholders_are_numbered_as_postgresql_s_own():
    assert numbered("SELECT %s, '%%s', a %% 2 FROM t WHERE b = %s") == (
        "SELECT $1, '%s', a % 2 FROM t WHERE b = $2",
        None,
    )
    assert numbered("SELECT %(b)s, %(a)s WHERE x = %(b)s") == (
        "SELECT $1, $2 WHERE x = $1",
        ("b", "a"),
    )
    with pytest.raises(ValueError, match="supported"):
        numbered("SELECT %b")
    with pytest.raises(ValueError, match="mixed"):
        numbered("SELECT %s, %(a)s")


@pytest.mark.postgres
def test_named_parameters_reach_their_placeholders():
    assert fetch_prepared("SELECT %(b)s::int, %(a)s::text, %(b)s::int + 1", {"a": "x", "b": 2}) == (
        2,
        "x",
        3,
    )


def _other_connection() -> Any:
    """A connection of its own to the test database, outside Django's."""
    import psycopg

    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        password=settings["PASSWORD"] or None,
        autocommit=True,
    )


def _seen_from_another_connection(market: str) -> bool:
    with _other_connection() as other:
        row = other.execute(f"SELECT count(*) FROM {M} WHERE market = %s", [market]).fetchone()
        return bool(row and row[0])


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.parametrize("watched", [False, True])
def test_a_batch_commits_its_outermost_block_in_the_same_round_trip(watched):
    # Watched (an execute wrapper, or the query log): the statements go through
    # Django's cursors, a path of its own.
    sent: list[str] = []

    def watch(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        sent.append(sql)
        return execute(sql, params, many, context)

    hooks: list[str] = []
    with transaction.atomic(), ExitStack() as stack:
        if watched:
            stack.enter_context(connection.execute_wrapper(watch))
        transaction.on_commit(lambda: hooks.append("ran"))
        batch = Batch()
        _insert_market(batch, "EARLY", "1", fetch=True)
        rows = batch.run(commit=True)
        assert bool(sent) == watched
        # Committed already: another connection sees the row before the block ends.
        assert _seen_from_another_connection("EARLY")
        assert rows[0] == ("EARLY", Decimal(1))
        assert hooks == []
    assert hooks == ["ran"]  # Django's on_commit hooks still run when the block ends


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_inside_an_outer_block_a_batch_leaves_the_commit_to_it():
    with transaction.atomic():
        with transaction.atomic():
            batch = Batch()
            _insert_market(batch, "NESTED", "1")
            batch.run(commit=True)
        assert not _seen_from_another_connection("NESTED")
    assert _seen_from_another_connection("NESTED")


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_batch_that_fails_commits_nothing():
    MarketRisk.objects.create(market="TAKEN", position=0, open_buy=0, open_sell=0)
    with pytest.raises(IntegrityError), transaction.atomic():  # noqa: PT012 (rollback)
        batch = Batch()
        _insert_market(batch, "FIRST", "1", independent=False)
        _insert_market(batch, "TAKEN", "2", independent=False)
        batch.run(commit=True)
    assert not _seen_from_another_connection("FIRST")
    assert MarketRisk.objects.count() == 1


class _Abort(Exception):
    pass


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.parametrize("first", ["batch", "fetch_prepared"])
def test_the_first_statement_of_a_block_begins_its_transaction_in_its_own_round_trip(first):
    # BEGIN travels with the block's first statement (psycopg would send it
    # alone): the statement must still run inside the block's transaction.
    sql = (
        f"INSERT INTO {M} (market, position, open_buy, open_sell) VALUES (%s, 1, 0, 0)"
        " RETURNING market"
    )
    with pytest.raises(_Abort), transaction.atomic():  # noqa: PT012 (rollback)
        if first == "batch":
            batch = Batch()
            batch.add(sql, ["UNDONE"], fetch=True)
            assert batch.run()[0] == ("UNDONE",)
        else:
            assert fetch_prepared(sql, ["UNDONE"]) == ("UNDONE",)
        assert not _seen_from_another_connection("UNDONE")  # not committed on its own
        raise _Abort
    assert not MarketRisk.objects.filter(market="UNDONE").exists()  # rolled back with the block
    with transaction.atomic():
        fetch_prepared(sql, ["DONE"])
        MarketRisk.objects.filter(market="DONE").update(position=2)  # an ORM statement after it
        assert not _seen_from_another_connection("DONE")
    assert MarketRisk.objects.get(market="DONE").position == 2
    assert connection.get_autocommit()


# --- the wire: statements prepared and pipelined straight through libpq ------------


def _ours_prepared() -> dict[str, str]:
    """The server's prepared statements of this session that the wire made
    (asked through Django's own cursor, which prepares nothing)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, statement FROM pg_prepared_statements WHERE starts_with(name, '_cs_')"
        )
        return dict(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_statement_is_prepared_once_per_connection_and_a_rollback_keeps_it():
    sql = "SELECT %s::int + 1"
    with pytest.raises(_Abort), transaction.atomic():  # noqa: PT012 (rollback)
        assert fetch_prepared(sql, [1]) == (2,)
        raise _Abort
    prepared = _ours_prepared()
    assert "SELECT $1::int + 1" in prepared.values()
    assert fetch_prepared(sql, [41]) == (42,)
    with transaction.atomic():
        assert fetch_prepared(sql, [9]) == (10,)
    assert _ours_prepared() == prepared  # used again, not prepared again


@pytest.mark.postgres
def test_statements_queued_after_a_failing_one_are_not_taken_for_prepared():
    MarketRisk.objects.create(market="TAKEN")
    later = f"SELECT count(*) FROM {M} WHERE market <> %s"  # never sent before
    with pytest.raises(IntegrityError), transaction.atomic():  # noqa: PT012 (rollback)
        batch = Batch()
        _insert_market(batch, "TAKEN", "2")
        batch.add(later, ["x"], fetch=True)  # its preparation was skipped with it
        batch.run()
    assert later.replace("%s", "$1") not in _ours_prepared().values()
    assert fetch_prepared(later, ["x"]) == (1,)


@pytest.mark.postgres
def test_the_same_statement_with_parameters_of_other_types_runs_too():
    sql = "SELECT %s::numeric IS NULL, %s::text"
    assert fetch_prepared(sql, [None, "a"]) == (True, "a")
    assert fetch_prepared(sql, [Decimal("1.5"), "b"]) == (False, "b")
    assert fetch_prepared(sql, [7, None]) == (False, None)
    assert fetch_prepared(f"SELECT market FROM {M} WHERE market = %s", ["NONE"]) is None
    assert (
        fetch_prepared(f"SELECT market FROM {M} WHERE market = %s", ["NONE"], every_row=True) == []
    )


@pytest.mark.postgres
def test_past_its_limit_the_wire_starts_over_with_none_prepared(monkeypatch):
    from compliance_site.db import _Wire

    monkeypatch.setattr(_Wire, "MAX_STATEMENTS", 3)
    for n in range(8):
        assert fetch_prepared(f"SELECT %s::int + {n}", [1]) == (1 + n,)
        assert len(_ours_prepared()) <= 3
    assert fetch_prepared("SELECT %s::int + 7", [2]) == (9,)


@pytest.mark.postgres
def test_inside_a_pipeline_someone_else_opened_statements_take_the_cursors_road():
    with transaction.atomic():
        connection.ensure_connection()
        with connection.connection.pipeline():
            assert fetch_prepared("SELECT %s::int * 2", [21]) == (42,)
            batch = Batch()
            _insert_market(batch, "PIPED", "1", fetch=True)
            assert batch.run()[0] == ("PIPED", Decimal(1))
    assert MarketRisk.objects.filter(market="PIPED").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_connection_lost_under_the_wire_raises_and_the_next_request_reconnects():
    from django.db import OperationalError

    fetch_prepared("SELECT %s::int", [1])
    pid = connection.connection.info.backend_pid
    with _other_connection() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    with pytest.raises(OperationalError), transaction.atomic():
        fetch_prepared("SELECT %s::int", [2])
    connection.close_if_unusable_or_obsolete()  # what Django does when a request ends
    assert fetch_prepared("SELECT %s::int", [3]) == (3,)


@pytest.mark.postgres
def test_the_pipeline_exchange_answers_each_command_in_order_and_an_error_aborts_the_rest():
    """pipeline_exchange is the one place that drives psycopg's pipeline API:
    one result per command, in order; a failing command's error and the
    commands after it aborted, without raising; the connection usable after."""
    import psycopg

    from compliance_site.db import Command, pipeline_exchange

    connection.ensure_connection()
    raw = connection.connection
    status = psycopg.pq.ExecStatus
    dump = psycopg.adapt.Transformer(raw)
    params = dump.dump_sequence([20], [psycopg.adapt.PyFormat.TEXT])
    before = transaction.savepoint()
    results = pipeline_exchange(
        raw,
        [
            Command(b"SELECT $1::int + 1", prepare_as=b"_test_exchange"),
            Command(b"", run_prepared=b"_test_exchange", params=params, formats=dump.formats),
            Command(b"SELECT 1/0"),
            Command(b"SELECT 2"),
        ],
    )
    assert [r.status for r in results] == [
        status.COMMAND_OK,
        status.TUPLES_OK,
        status.FATAL_ERROR,
        status.PIPELINE_ABORTED,
    ]
    assert results[1].get_value(0, 0) == b"21"
    assert raw.pgconn.pipeline_status == psycopg.pq.PipelineStatus.OFF
    transaction.savepoint_rollback(before)  # the error aborted the transaction
    raw.execute("DEALLOCATE _test_exchange")  # prepared statements outlive a rollback
    assert fetch_prepared("SELECT %s::int", [5]) == (5,)


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_each_connection_keeps_its_own_prepared_statements_and_a_new_one_starts_with_none():
    from compliance_site import db

    fetch_prepared("SELECT %s::int + 100", [1])
    first = connection.connection
    assert db._wires[first].names
    connection.close()
    assert fetch_prepared("SELECT %s::int + 100", [2]) == (102,)
    assert connection.connection is not first
    assert len(db._wires[connection.connection].names) == 1
