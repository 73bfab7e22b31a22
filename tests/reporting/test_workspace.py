"""The workspace: the dashboard as the admin's front page (what needs
attention, the charts' JSON), the auditor's evidence page, and auditors
reading every compliance page without any action."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from audit.models import LogExport, Record
from surveillance.models import KillSwitch
from tests.conftest import holding_on
from tests.surveillance.test_alerts import finding, make_alerts

pytestmark = pytest.mark.django_db


def login(people: dict[str, Any], name: str) -> Client:
    client = Client()
    client.force_login(people[name])
    return client


def order(bot: Any, n: int, quantity: str = "1", price: str = "100", market: str = "BTC-USD"):
    item = bot.signer.item(
        "ORDER_SUBMITTED",
        {
            "order_id": f"o-{n}",
            "market": market,
            "side": "buy",
            "quantity": quantity,
            "price": f"{price}.{n:03d}",
            "order_type": "limit",
        },
    )
    response = bot.client.post("/api/v1/orders/", item, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def trading_day(people: dict[str, Any], bot: Any) -> dict[str, Any]:
    from surveillance.services.config import config_current
    from surveillance.services.kill_switch import kill_switch_activate

    config_current()
    holding_on(people)
    decisions = [order(bot, 1)["decision"], order(bot, 2)["decision"]]
    decisions.append(order(bot, 3, quantity="100")["decision"])  # 10,000 notional: held
    high, critical = make_alerts(finding(1, severity="high"), finding(2, severity="critical"))
    kill_switch_activate(
        scope="market", target="ETH-USD", reason="venue outage", acting_user=people["rita"]
    )
    return {"decisions": decisions, "alerts": [high, critical]}


def test_the_front_page_is_a_dashboard_of_what_needs_attention(
    people: dict[str, Any], trading_day: dict[str, Any]
) -> None:
    assert trading_day["decisions"][:3] == ["accepted", "accepted", "held"]
    html = login(people, "alice").get("/admin/").content.decode()
    assert "Needs attention now" in html
    card = html[html.index('id="card-approvals"') : html.index('id="card-alerts"')]
    assert '<p class="ws-big">1</p>' in card
    assert "order" in card
    alerts = html[html.index('id="card-alerts"') : html.index('id="card-kill"')]
    assert '<p class="ws-big">2</p>' in alerts
    assert "Critical" in alerts
    assert "market:ETH-USD" in html
    assert "venue outage" in html
    assert 'id="card-webhooks"' in html
    assert 'id="card-reports"' in html
    # the charts load from the app's own static files, no inline script
    assert "/static/vendor/chartjs/chart.umd.min.js" in html
    assert "<script>" not in html
    assert " style=" not in html


def test_viewers_get_the_dashboard_without_the_officers_cards(
    people: dict[str, Any], trading_day: dict[str, Any]
) -> None:
    html = login(people, "carol").get("/admin/").content.decode()
    assert "Needs attention now" in html
    assert "venue outage" in html
    assert 'id="card-webhooks"' not in html


def test_the_charts_json_counts_the_day(people: dict[str, Any], trading_day: dict[str, Any]):
    data = login(people, "carol").get("/admin/dashboard/charts/?hours=6").json()
    assert len(data["labels"]) == 6
    assert sum(data["orders"]["accepted"]) == 2
    assert sum(data["orders"]["held"]) == 1
    assert data["alerts_by_detector"] == {"spoofing": 2}
    assert "BTC-USD" in data["exposure_by_market"]
    assert all(isinstance(v, str) for v in data["exposure_by_market"].values())
    bad = login(people, "carol").get("/admin/dashboard/charts/?hours=x")
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_hours"
    # the attention panel refreshes as a fragment
    fragment = login(people, "carol").get("/admin/dashboard/attention/").content.decode()
    assert "Needs attention now" in fragment
    assert "<html" not in fragment


def test_rejection_reasons_are_counted_by_code(people: dict[str, Any], bot: Any) -> None:
    from surveillance.services.config import config_current
    from surveillance.services.kill_switch import kill_switch_activate

    config_current()
    kill_switch_activate(scope="global", target="", reason="stop", acting_user=people["rita"])
    assert order(bot, 1)["decision"] == "rejected"
    data = login(people, "alice").get("/admin/dashboard/charts/").json()
    assert data["rejection_reasons"] == {"kill_switch": 1}
    assert sum(data["orders"]["rejected"]) == 1


def test_anonymous_is_sent_to_the_login(people: dict[str, Any]) -> None:
    response = Client().get("/admin/dashboard/charts/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_auditor_requests_downloads_and_copies_on_the_evidence_page(
    people: dict[str, Any],
    bot: Any,
    settings: Any,
    tmp_path: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from audit.services.checkpoints import checkpoint_create

    settings.MEDIA_ROOT = tmp_path
    checkpoint_create(force=True)
    carol = login(people, "carol")
    page = carol.get("/admin/evidence/").content.decode()
    assert 'id="log-public-key"' in page
    assert 'id="latest-checkpoint"' in page
    assert "compliance_client.verify" in page
    records = Record.objects.count()
    # a backwards range is refused on the page, nothing queued
    refused = carol.post("/admin/evidence/", {"from_seq": 5, "to_seq": 1})
    assert refused.status_code == 200
    assert not LogExport.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = carol.post("/admin/evidence/", {"from_seq": "", "to_seq": ""})
    assert response.status_code == 302
    export = LogExport.objects.get()
    assert export.status == "done"
    assert export.requested_by == people["carol"]
    listing = carol.get("/admin/evidence/").content.decode()
    assert export.sha256 in listing
    download = carol.get(f"/api/v1/log/exports/{export.pk}/download/")
    assert download.status_code == 200
    assert Record.objects.count() == records


@pytest.mark.parametrize(
    "url",
    [
        "/admin/reporting/legalhold/",
        "/admin/reporting/legalhold/manifest/",
        "/admin/evidence/",
        "/admin/audit/record/",
        "/admin/surveillance/order/",
        "/admin/surveillance/alert/",
        "/admin/approvals/approvalrequest/",
        "/admin/surveillance/killswitch/",
        "/admin/reporting/report/",
    ],
)
def test_auditors_read_every_compliance_page(people: dict[str, Any], url: str) -> None:
    page = login(people, "carol").get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Place a legal hold" not in html
    assert "Activate a kill switch" not in html


def test_an_auditor_cannot_act_from_the_pages(people: dict[str, Any]) -> None:
    carol = login(people, "carol")
    carol.post("/admin/reporting/legalhold/place/", {"reason": "mine"})
    carol.post("/admin/surveillance/killswitch/activate/", {"scope": "global", "reason": "x"})
    assert not KillSwitch.objects.exists()
    from reporting.models import LegalHold

    assert not LegalHold.objects.exists()


# --- readable everywhere ------------------------------------------------------------------


def test_orders_and_records_read_as_people_read_them(people: dict[str, Any], bot: Any) -> None:
    from surveillance.models import Order
    from surveillance.services.config import config_current

    config_current()
    order(bot, 7, quantity="2.5", price="100")
    placed = Order.objects.get(order_id="o-7")
    alice = login(people, "alice")
    listing = alice.get("/admin/surveillance/order/?q=o-7").content.decode()
    assert ">2.5<" in listing
    assert "100.007<" in listing
    assert "250.0175<" in listing
    assert "2.500000000000" not in listing
    # times in the officer's zone, the UTC microseconds on hover
    assert f"{placed.created_at_us} µs" in listing
    assert "<time datetime=" in listing
    # the log is searchable by order id (through the projections), agent, time range
    records = alice.get("/admin/audit/record/?q=o-7").content.decode()
    assert f">{placed.seq}<" in records
    assert "ORDER_SUBMITTED" in records
    assert "ORDER_SUBMITTED" in alice.get("/admin/audit/record/?q=bot-1").content.decode()
    past = alice.get(
        "/admin/audit/record/?recorded_at_us_from=2000-01-01&recorded_at_us_to=2000-01-02"
    )
    assert past.status_code == 200
    assert "ORDER_SUBMITTED" not in past.content.decode()
    recent = alice.get("/admin/audit/record/?recorded_at_us_last=1h").content.decode()
    assert "ORDER_SUBMITTED" in recent
    # a record's JSON is a definition list (the stored JSON behind a toggle)
    record = Record.objects.get(seq=placed.seq)
    page = alice.get(f"/admin/audit/record/{record.pk}/change/").content.decode()
    assert '<dl class="ws-json">' in page
    assert "<dt>order_id</dt><dd>o-7</dd>" in page


def test_a_config_version_shows_its_diff_against_the_previous(people: dict[str, Any]) -> None:
    import copy

    from surveillance.config import DEFAULT_CONFIG
    from surveillance.models import ComplianceConfigVersion
    from surveillance.services.config import config_current, config_update

    config_current()
    changed = copy.deepcopy(DEFAULT_CONFIG)
    changed["regulatory_limits"]["max_orders_per_minute"] = 60
    config_update(config=changed, acting_user=people["alice"])
    latest = ComplianceConfigVersion.objects.order_by("-version").first()
    page = login(people, "carol").get(
        f"/admin/surveillance/complianceconfigversion/{latest.pk}/change/"
    )
    html = page.content.decode()
    assert "regulatory_limits.max_orders_per_minute" in html
    assert '<td class="ws-old">120</td><td class="ws-new">60</td>' in html


def test_big_changelists_count_no_further_than_the_cap(people: dict[str, Any], bot: Any) -> None:
    from django.db import connection

    from audit.admin_tools import COUNT_CAP, FastCountPaginator
    from surveillance.models import Order

    rows = [
        Order(
            agent=bot.agent,
            order_id=f"bulk-{n}",
            market="BTC-USD",
            side="buy",
            order_type="limit",
            quantity=1,
            price=100,
            status="open",
            decision="accepted",
            config_hash="c" * 64,
            seq=n,
            created_at_us=n,
            updated_at_us=n,
        )
        for n in range(COUNT_CAP + 200)
    ]
    Order.objects.bulk_create(rows)
    small = FastCountPaginator(Order.objects.filter(order_id="bulk-7").order_by("pk"), 50)
    assert small.count == 1
    assert not small.estimated
    big = FastCountPaginator(Order.objects.filter(market="BTC-USD").order_by("pk"), 50)
    if connection.vendor == "postgresql":
        connection.cursor().execute("ANALYZE surveillance_order")
        big = FastCountPaginator(Order.objects.filter(market="BTC-USD").order_by("pk"), 50)
        assert big.count > COUNT_CAP  # the planner's estimate, not a count
    else:
        assert big.count == COUNT_CAP + 1
    assert big.estimated
    page = login(people, "alice").get("/admin/surveillance/order/?market=BTC-USD")
    assert page.status_code == 200
    assert "bulk-" in page.content.decode()
