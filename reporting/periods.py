"""Report periods: a UTC day, a calendar quarter, or an explicit [start, end)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # exclusive
    label: str

    @property
    def start_us(self) -> int:
        return to_us(self.start)

    @property
    def end_us(self) -> int:
        return to_us(self.end)


def to_us(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def iso_us(us: int | None) -> str | None:
    """ISO 8601 UTC with microseconds, as regulators ask for timestamps."""
    if us is None:
        return None
    return from_us(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def day(d: date) -> Period:
    start = datetime.combine(d, time(0), tzinfo=UTC)
    return Period(start, start + timedelta(days=1), d.isoformat())


def quarter_start(year: int, q: int) -> datetime:
    return datetime(year, 3 * (q - 1) + 1, 1, tzinfo=UTC)


def quarter(year: int, q: int) -> Period:
    if q not in (1, 2, 3, 4):
        raise ValueError("quarter must be 1 to 4")
    end = quarter_start(year + 1, 1) if q == 4 else quarter_start(year, q + 1)
    return Period(quarter_start(year, q), end, f"{year}-Q{q}")


def previous_quarter(today: date) -> tuple[int, int]:
    q = (today.month - 1) // 3 + 1
    return (today.year - 1, 4) if q == 1 else (today.year, q - 1)


def span(start: datetime, end: datetime) -> Period:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must carry a time zone")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise ValueError("end must be after start")
    label = f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}"
    return Period(start, end, label)


QUARTERLY = "quarterly"  # Report.Kind.QUARTERLY (the models import this module)


def period_of(
    *,
    kind: str,
    date: date | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    year: int | None = None,
    quarter_no: int | None = None,
) -> Period:
    """The period a report request names, for the API and the admin alike:
    exactly one of a UTC day, a start and an end, or a year and a quarter; a
    quarterly report takes a year and a quarter. A ValueError says what is wrong."""
    given = {
        "date": date is not None,
        "range": start is not None or end is not None,
        "quarter": year is not None or quarter_no is not None,
    }
    if sum(given.values()) != 1:
        raise ValueError("give exactly one period: date, or start and end, or year and quarter")
    if date is not None:
        period = day(date)
    elif given["range"]:
        if start is None or end is None:
            raise ValueError("start and end go together")
        period = span(start, end)
    else:
        if year is None or quarter_no is None:
            raise ValueError("year and quarter go together")
        period = quarter(year, quarter_no)
    if kind == QUARTERLY and not given["quarter"]:
        raise ValueError("a quarterly report takes year and quarter")
    return period
