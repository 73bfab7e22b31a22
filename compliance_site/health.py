"""GET /healthz: database, broker and checkpoint freshness, for load balancers and operators."""

from __future__ import annotations

import time

from django.db import connection
from django.http import HttpRequest, JsonResponse


def _broker_ok() -> bool:
    from compliance_site.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
        return True
    except Exception:
        return False


def healthz(request: HttpRequest) -> JsonResponse:
    try:
        connection.ensure_connection()
        database = connection.is_usable()  # a round trip to the server
    except Exception:
        database = False
    checkpoint_age = None
    if database:
        from audit.models import Checkpoint

        latest = (
            Checkpoint.objects.order_by("-timestamp_us")
            .values_list("timestamp_us", flat=True)
            .first()
        )
        if latest is not None:
            checkpoint_age = round(time.time() - latest / 1_000_000, 1)
    broker = _broker_ok()
    body = {
        "database": "ok" if database else "down",
        "broker": "ok" if broker else "down",
        "last_checkpoint_age_s": checkpoint_age,
    }
    return JsonResponse(body, status=200 if database and broker else 503)
