"""Admin building blocks for big tables, shared by every app's pages.

* `FastCountPaginator`: a changelist never counts a million rows. It counts
  up to `COUNT_CAP`; past that, PostgreSQL's planner estimate of the query's
  rows stands in (past the first pages the total is an estimate).
* `time_range_filter(field)`: a From/To filter (dates or date-times in the
  officer's zone) on an integer microsecond column or a datetime column,
  with presets (last hour, 24 h, 7 days), served by the column's index.
* Record search hooks: apps to the right of audit (surveillance) tell the
  log's page which records concern an order id, without audit importing them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.functional import cached_property

from .store import planner_row_estimate

COUNT_CAP = 1_000


class FastCountPaginator(Paginator):
    estimated = False

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if not isinstance(qs, QuerySet):
            return super().count
        counted = qs.order_by()[: COUNT_CAP + 1].count()
        self.estimated = counted > COUNT_CAP
        if not self.estimated:
            return counted
        estimate = planner_row_estimate(qs)
        return counted if estimate is None else max(estimate, counted)


def _parse_moment(text: str, end: bool) -> dt.datetime | None:
    text = (text or "").strip()
    if not text:
        return None
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            return None
        moment = dt.datetime.combine(day + dt.timedelta(days=1) if end else day, dt.time(0))
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return moment


PRESETS = [("1h", "Last hour", 1), ("24h", "Last 24 hours", 24), ("7d", "Last 7 days", 168)]


def time_range_filter(field: str, *, microseconds: bool, title: str = "time") -> type:
    """A list filter on `field` between `<field>_from` and `<field>_to` (dates
    or ISO date-times; To is exclusive, a To date includes that whole day)."""

    param_from, param_to, param_preset = f"{field}_from", f"{field}_to", f"{field}_last"

    def value(moment: dt.datetime) -> Any:
        return int(moment.timestamp() * 1_000_000) if microseconds else moment

    class TimeRangeFilter(admin.ListFilter):
        template = "admin/workspace/time_range_filter.html"

        def __init__(
            self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any
        ) -> None:
            self.title = title
            super().__init__(request, params, model, model_admin)
            self.values = {}
            for name in (param_from, param_to, param_preset):
                if name in params:
                    raw = params.pop(name)
                    self.values[name] = raw[-1] if isinstance(raw, list) else raw
            self.request = request

        def has_output(self) -> bool:
            return True

        def expected_parameters(self) -> list[str | None]:
            return [param_from, param_to, param_preset]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            preset = {key: hours for key, _, hours in PRESETS}.get(
                self.values.get(param_preset, "")
            )
            start = _parse_moment(self.values.get(param_from, ""), end=False)
            end = _parse_moment(self.values.get(param_to, ""), end=True)
            if preset:
                start = timezone.now() - dt.timedelta(hours=preset)
            if start is not None:
                queryset = queryset.filter(**{f"{field}__gte": value(start)})
            if end is not None:
                queryset = queryset.filter(**{f"{field}__lt": value(end)})
            return queryset

        def choices(self, changelist: Any) -> Iterator[dict[str, Any]]:
            others = [
                (key, val)
                for key, val in self.request.GET.items()
                if key not in (param_from, param_to, param_preset, "p")
            ]
            yield {
                "form": True,
                "param_from": param_from,
                "param_to": param_to,
                "value_from": self.values.get(param_from, ""),
                "value_to": self.values.get(param_to, ""),
                "others": others,
            }
            yield {
                "selected": not self.values,
                "query_string": changelist.get_query_string(
                    remove=[param_from, param_to, param_preset]
                ),
                "display": "Any time",
            }
            for key, label, _hours in PRESETS:
                yield {
                    "selected": self.values.get(param_preset) == key,
                    "query_string": changelist.get_query_string(
                        {param_preset: key}, [param_from, param_to]
                    ),
                    "display": label,
                }

    return TimeRangeFilter


# --- record search hooks ---------------------------------------------------------------

RecordSearchHook = Callable[[str], Iterable[int]]
_record_search_hooks: list[RecordSearchHook] = []


def register_record_search(hook: RecordSearchHook) -> None:
    """`hook(term)` returns the seqs of records that concern `term` (an order
    id, say); the log's page lists them beside its own matches."""
    if hook not in _record_search_hooks:
        _record_search_hooks.append(hook)


def record_search_seqs(term: str) -> set[int]:
    seqs: set[int] = set()
    for hook in _record_search_hooks:
        seqs.update(hook(term))
    return seqs
