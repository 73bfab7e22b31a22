"""compliance_site.db.Batch: pipelined statements, and runs of independent
statements sent as one (PostgreSQL), with the semantics of running them one by one."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from compliance_site.db import Batch
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


def test_an_error_in_a_fused_statement_fails_the_batch_and_stores_nothing():
    MarketRisk.objects.create(market="TAKEN")
    with pytest.raises(IntegrityError), transaction.atomic():
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
