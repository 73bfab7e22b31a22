"""Hand-written SQL of the reporting app (HOUSE_STYLE: only in <app>/store.py).

`rejection_reason_counts`: the dashboard's rejection reasons, counted by
PostgreSQL from the orders' JSON (jsonb_array_elements over the window's
latest rejected orders) instead of decoding every row in Python; on SQLite
(development, tests) the same count is made in Python."""

from __future__ import annotations

import json
from collections import Counter

from django.db import connection

from surveillance.models import Order


def rejection_reason_counts(*, since_us: int, max_orders: int, top: int) -> dict[str, int]:
    """Reason codes of the latest `max_orders` orders rejected since
    `since_us`, most frequent first (at most `top`)."""
    if connection.vendor == "postgresql":
        table = Order._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT r->>'code' AS code, count(*) FROM ("  # noqa: S608 (table name constant)
                f"  SELECT reasons FROM {table}"
                "   WHERE created_at_us >= %s AND decision = 'rejected'"
                "   ORDER BY created_at_us DESC LIMIT %s"
                ") o, jsonb_array_elements(o.reasons) r"
                " WHERE r->>'code' IS NOT NULL"
                " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %s",
                [since_us, max_orders, top],
            )
            return {code: int(n) for code, n in cursor.fetchall()}
    counts: Counter[str] = Counter()
    rejected = (
        Order.objects.filter(created_at_us__gte=since_us, decision="rejected")
        .order_by("-created_at_us")
        .values_list("reasons", flat=True)[:max_orders]
    )
    for listed in rejected:
        if isinstance(listed, str):
            listed = json.loads(listed)
        for reason in listed or []:
            if isinstance(reason, dict) and reason.get("code"):
                counts[reason["code"]] += 1
    return dict(counts.most_common(top))
