"""How the admin shows values: one helper per kind of value, used by every
app's admin pages (audit is to the left of every app that has pages).

* Times in the officer's time zone (activated per request from the browser's
  zone, see compliance_site/middleware.py), the UTC microsecond value on hover.
* Decimals normalized ("10.5", never "10.500000000000").
* JSON as a definition list (nested for objects), never a raw blob.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from compliance_site import decimals

EMPTY = "-"


def decimal_text(value: Decimal | str | None) -> str:
    """The one way a decimal is written for people: normalized, never exponent."""
    if value is None or value == "":
        return EMPTY
    return decimals.decimal_text(value if isinstance(value, Decimal) else Decimal(str(value)))


def _local(moment: dt.datetime) -> str:
    local = timezone.localtime(moment)
    return local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or "")


def when(moment: dt.datetime | None) -> SafeString | str:
    """A datetime in the officer's zone, UTC (with microseconds) on hover."""
    if moment is None:
        return EMPTY
    utc = moment.astimezone(dt.UTC)
    us = int(utc.timestamp()) * 1_000_000 + utc.microsecond
    return format_html(
        '<time datetime="{}" title="{} UTC · {} µs">{}</time>',
        utc.isoformat(),
        utc.strftime("%Y-%m-%d %H:%M:%S.%f"),
        us,
        _local(moment),
    )


def when_us(us: int | None) -> SafeString | str:
    """Microseconds since the epoch (as records carry time) in the officer's zone."""
    if us is None:
        return EMPTY
    moment = dt.datetime.fromtimestamp(us // 1_000_000, tz=dt.UTC).replace(
        microsecond=us % 1_000_000
    )
    return when(moment)


def json_list(value: Any) -> SafeString:
    """JSON as a definition list: keys as terms; objects nested, lists inline
    when their items are scalars, one item per line otherwise."""
    if isinstance(value, dict):
        if not value:
            return format_html("<span class='ws-empty'>{}</span>", "{}")
        items = format_html_join(
            "", "<dt>{}</dt><dd>{}</dd>", ((k, json_list(v)) for k, v in value.items())
        )
        return format_html('<dl class="ws-json">{}</dl>', items)
    if isinstance(value, list):
        if not value:
            return format_html("<span class='ws-empty'>{}</span>", "[]")
        if all(not isinstance(v, dict | list) for v in value):
            return format_html_join(", ", "{}", ((json_list(v),) for v in value))
        return format_html(
            '<ol class="ws-json-list">{}</ol>',
            format_html_join("", "<li>{}</li>", ((json_list(v),) for v in value)),
        )
    if value is None:
        return mark_safe("<span class='ws-empty'>null</span>")
    if isinstance(value, bool):
        return format_html("<code>{}</code>", "true" if value else "false")
    if isinstance(value, Decimal):
        return format_html("{}", decimal_text(value))
    return format_html("{}", value)
