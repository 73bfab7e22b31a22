"""The officer's day and the auditor's, in real Chromium (headless: Debian's
chromium and chromium-driver) against a live server. Each step goes through
the pages as a person would, and each test checks what the step stored.

Screenshots of the pages checked are saved under the test's temporary dir;
with COMPLIANCE_SCREENSHOTS=1 the README's (docs/screenshots/) are replaced
by them (`make screenshots`), so the README shows the pages as they are."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from audit.models import LogExport, Record
from surveillance.models import KillSwitch, Order
from tests.conftest import holding_on
from tests.surveillance.test_alerts import finding, make_alerts
from tests.surveillance.test_kill_switch_browser import _go, _text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

README_SHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    path = tmp_path / "downloads"
    path.mkdir()
    return path


@pytest.fixture
def shots(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "shots"
    path.mkdir()
    yield path
    if os.environ.get("COMPLIANCE_SCREENSHOTS"):
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        for shot in path.glob("*.png"):
            shutil.copy(shot, README_SHOTS / shot.name)


@pytest.fixture
def browser(downloads: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from tests.conftest import browser_paths

    paths = browser_paths()
    assert paths is not None  # tests without a browser are skipped at collection
    chromium, chromedriver = paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1440,1100")  # the workspace fits 1440 px
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def log_in(driver: Any, base: str, name: str) -> None:
    driver.get(f"{base}/admin/login/?next=/admin/")
    css(driver, "input[name=username]").send_keys(name)
    css(driver, "input[name=password]").send_keys(f"pw-{name}")
    _go(driver, css(driver, "input[type=submit]"))
    assert driver.current_url.endswith("/admin/"), driver.current_url


def log_out(driver: Any) -> None:
    _go(driver, css(driver, "#logout-form button"))


def wait_for(predicate: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def downloaded(folder: Path) -> Path:
    return wait_for(
        lambda: next((p for p in folder.iterdir() if not p.name.endswith(".crdownload")), None)
    )


def held_order(bot: Any, n: int) -> Order:
    item = bot.signer.item(
        "ORDER_SUBMITTED",
        {
            "order_id": f"big-{n}",
            "market": "BTC-USD",
            "side": "buy",
            "quantity": "100",
            "price": f"100.{n}",
            "order_type": "limit",
        },
    )
    assert bot.client.post("/api/v1/orders/", item, format="json").json()["decision"] == "held"
    return Order.objects.get(order_id=f"big-{n}")


def decide(driver: Any, base: str, approval_id: int, action: str, reason: str) -> None:
    """Through the existing approval queue: select, run the action, give a reason."""
    from selenium.webdriver.support.ui import Select

    driver.get(f"{base}/admin/approvals/approvalrequest/?status__exact=pending")
    css(driver, f"input[name=_selected_action][value='{approval_id}']").click()
    Select(css(driver, "select[name=action]")).select_by_value(action)
    _go(driver, css(driver, "button[name=index]"))
    css(driver, "textarea[name=reason]").send_keys(reason)
    _go(driver, css(driver, "#content form input[type=submit]"))


def test_the_officers_day(
    live_server: Any,
    browser: Any,
    people: dict[str, Any],
    bot: Any,
    shots: Path,
    downloads: Path,
) -> None:
    from selenium.webdriver.support.ui import Select

    from surveillance.services.config import config_current

    base = live_server.url
    config_current()
    holding_on(people)
    # the day so far: a few accepted orders, two held for approval, an alert on the bot
    for n in range(1, 4):
        item = bot.signer.item(
            "ORDER_SUBMITTED",
            {
                "order_id": f"o-{n}",
                "market": "BTC-USD",
                "side": "buy",
                "quantity": "1",
                "price": f"100.{n}",
                "order_type": "limit",
            },
        )
        assert bot.client.post("/api/v1/orders/", item, format="json").status_code == 201
    to_grant, to_deny = held_order(bot, 1), held_order(bot, 2)
    evidence = list(Order.objects.order_by("seq").values_list("seq", flat=True)[:3])
    from dataclasses import replace

    (alert,) = make_alerts(replace(finding(1, severity="high"), evidence=evidence))

    # 1. the dashboard: what needs attention, and the charts drawn from the app's JSON
    log_in(browser, base, "alice")
    assert "Needs attention now" in _text(browser)
    assert css(browser, "#card-approvals .ws-big").text == "2"
    assert css(browser, "#card-alerts .ws-big").text.startswith("1")
    wait_for(lambda: css(browser, "#ws-charts").get_attribute("data-loaded") == "1")
    assert browser.execute_script("return Chart.getChart('chart-orders') !== undefined;")
    held = browser.execute_script(
        "return Chart.getChart('chart-orders').data.datasets[2].data.reduce((a, b) => a + b, 0);"
    )
    assert held == 2
    browser.set_window_size(1440, 1700)
    browser.save_screenshot(str(shots / "dashboard.png"))
    browser.set_window_size(1440, 1100)

    # 2. an alert from open to closed, with a note and an escalation
    _go(browser, css(browser, "#card-alerts h3 a"))
    _go(browser, css(browser, f"a[href$='/surveillance/alert/{alert.pk}/change/']"))
    timeline = css(browser, "#case-evidence").text
    assert "o-1" in timeline
    assert "ORDER_SUBMITTED" in timeline
    _go(browser, css(browser, "#form-assign input[name=to_me]"))
    css(browser, "#form-note textarea").send_keys("Three quick orders at rising prices.")
    _go(browser, css(browser, "#form-note input[type=submit]"))
    Select(css(browser, "#form-escalate select[name=to_role]")).select_by_value("admin")
    css(browser, "#form-escalate textarea").send_keys("Pattern repeats; MLRO to look.")
    _go(browser, css(browser, "#form-escalate input[type=submit]"))
    assert css(browser, "#case-status").text == "Escalated"
    browser.save_screenshot(str(shots / "alert-case.png"))
    # closing needs a disposition: none is preselected
    assert (
        Select(css(browser, "#form-resolve select")).first_selected_option.get_attribute("value")
        == ""
    )
    Select(css(browser, "#form-resolve select")).select_by_value("false_positive")
    css(browser, "#form-resolve textarea").send_keys("Market making inside the spread.")
    _go(browser, css(browser, "#form-resolve input[type=submit]"))
    alert.refresh_from_db()
    assert (alert.status, alert.disposition, alert.escalated_to_role) == (
        "closed",
        "false_positive",
        "admin",
    )
    thread = css(browser, "#case-thread").text
    for step in ("Three quick orders", "MLRO to look", "Market making inside the spread"):
        assert step in thread
    actions = [e.action for e in alert.log_entries.order_by("seq")]
    assert actions == ["assign", "note", "escalate", "resolve"]

    # 3. approve one held order and deny the other, through the approval queue
    browser.get(f"{base}/admin/approvals/approvalrequest/")
    browser.save_screenshot(str(shots / "approvals.png"))
    decide(browser, base, to_grant.approval_id, "approve_selected", "Within the desk's mandate.")
    decide(browser, base, to_deny.approval_id, "deny_selected", "Too large for this venue.")
    to_grant.refresh_from_db()
    to_deny.refresh_from_db()
    assert (to_grant.status, to_deny.status) == ("open", "rejected")

    # 4. a kill switch on the market, and its release
    browser.get(f"{base}/admin/surveillance/killswitch/activate/")
    Select(css(browser, "select[name=scope]")).select_by_value("market")
    css(browser, "input[name=target]").send_keys("BTC-USD")
    css(browser, "textarea[name=reason]").send_keys("venue halted")
    _go(browser, css(browser, "input[value='Review…']"))
    _go(browser, css(browser, "input[name=confirm]"))
    switch = KillSwitch.objects.get(active=True)
    assert (switch.scope, switch.target) == ("market", "BTC-USD")
    browser.get(f"{base}/admin/")
    assert "market:BTC-USD" in css(browser, "#card-kill").text
    browser.get(f"{base}/admin/surveillance/killswitch/")
    from selenium.webdriver.common.by import By

    _go(browser, browser.find_element(By.LINK_TEXT, "Release…"))
    css(browser, "textarea[name=reason]").send_keys("venue reopened")
    _go(browser, css(browser, "input[name=confirm]"))
    assert not KillSwitch.objects.filter(active=True).exists()

    # the big pages fit a 1440 px screen: no sideways scrolling
    for page in (
        "/admin/audit/record/",
        "/admin/surveillance/order/",
        "/admin/surveillance/alert/",
        "/admin/approvals/approvalrequest/",
    ):
        browser.get(base + page)
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth;"
        )
        assert overflow <= 0, (page, overflow)

    # 5. a report for yesterday, generated and downloaded
    browser.get(f"{base}/admin/reporting/report/generate/")
    Select(css(browser, "select[name=kind]")).select_by_value("daily_trade")
    Select(css(browser, "select[name=format]")).select_by_value("csv")
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    css(browser, "input[name=date]").send_keys(yesterday)
    _go(browser, css(browser, "#content form input[type=submit]"))
    from reporting.models import Report

    report = wait_for(lambda: Report.objects.filter(status="done").first())
    browser.get(f"{base}/admin/reporting/report/")
    css(browser, f"a[href$='/reporting/report/{report.pk}/download/']").click()
    import hashlib

    assert hashlib.sha256(downloaded(downloads).read_bytes()).hexdigest() == report.sha256


def test_the_auditors_evidence(
    live_server: Any,
    browser: Any,
    people: dict[str, Any],
    bot: Any,
    shots: Path,
    downloads: Path,
) -> None:
    from audit.services.checkpoints import checkpoint_create
    from compliance_client.verify import verify_bundle

    bot.post_events([bot.signer.item("SYSTEM_ERROR", {"error_type": "x", "message": "y"})])
    checkpoint_create(force=True)
    base = live_server.url
    log_in(browser, base, "carol")
    _go(browser, css(browser, "a.ws-nav[href$='/admin/evidence/']"))
    assert "Verifying offline" in _text(browser)
    note = css(browser, "#latest-checkpoint").text
    assert note.startswith("compliance.local/log\n")
    _go(browser, css(browser, "input[name=request_bundle]"))
    export = wait_for(lambda: LogExport.objects.filter(status="done").first())
    assert export.requested_by == people["carol"]
    browser.refresh()
    browser.save_screenshot(str(shots / "evidence.png"))
    css(browser, "a.ws-download").click()
    bundle = downloaded(downloads)
    result = verify_bundle(
        str(bundle), trusted_checkpoint=note + "\n" if not note.endswith("\n") else note
    )
    assert result.ok, result.failure
    assert Record.objects.filter(event_type="SYSTEM_ERROR").count() == 1
