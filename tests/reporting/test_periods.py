"""reporting.periods.period_of: the one rule for the period a report request
names, which the API and the admin both apply."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from reporting.periods import period_of

START = datetime(2025, 3, 1, tzinfo=UTC)
END = datetime(2025, 3, 8, tzinfo=UTC)


def test_a_day_a_range_or_a_quarter():
    assert period_of(kind="daily_trade", date=date(2025, 3, 10)).label == "2025-03-10"
    assert period_of(kind="positions", start=START, end=END).label == (
        "2025-03-01T00:00:00Z/2025-03-08T00:00:00Z"
    )
    assert period_of(kind="quarterly", year=2025, quarter_no=1).label == "2025-Q1"


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("daily_trade", {}, "give exactly one period"),
        ("daily_trade", {"date": date(2025, 3, 10), "year": 2025, "quarter_no": 1}, "exactly one"),
        ("daily_trade", {"date": date(2025, 3, 10), "start": START}, "exactly one"),
        ("positions", {"start": START}, "start and end go together"),
        ("positions", {"end": END}, "start and end go together"),
        ("positions", {"start": END, "end": START}, "end must be after start"),
        ("quarterly", {"year": 2025}, "year and quarter go together"),
        ("quarterly", {"year": 2025, "quarter_no": 5}, "quarter must be 1 to 4"),
        ("quarterly", {"date": date(2025, 3, 10)}, "a quarterly report takes year and quarter"),
    ],
)
def test_refuses_what_names_no_single_period(kind, fields, message):
    with pytest.raises(ValueError, match=message):
        period_of(kind=kind, **fields)


@pytest.mark.django_db
def test_the_admin_form_and_the_api_refuse_the_same_requests(people):
    from rest_framework.test import APIClient

    from reporting.admin import GenerateForm

    # given a request naming both a day and a quarter
    form = GenerateForm(
        {"kind": "daily_trade", "format": "json", "date": "2025-03-10", "year": 2025, "quarter": 1}
    )
    api = APIClient()
    api.force_authenticate(people["alice"])
    answer = api.post(
        "/api/v1/reports/",
        {"kind": "daily_trade", "format": "json", "date": "2025-03-10", "year": 2025, "quarter": 1},
        format="json",
    )
    # then both refuse it, for the same reason
    assert not form.is_valid()
    assert answer.status_code == 400
    reason = "give exactly one period: date, or start and end, or year and quarter"
    assert form.non_field_errors() == [reason]
    assert answer.json()["detail"]["non_field_errors"] == [reason]
