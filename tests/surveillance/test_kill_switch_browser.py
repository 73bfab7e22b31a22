"""Real Chromium (headless: Debian's chromium and chromium-driver) drives the
admin on a live server, as a risk manager does when a bot runs away: log in,
review a kill switch (nothing happens), back out, activate it after the
confirmation, see the bot's next order refused, release it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from audit.models import Record
from surveillance.models import KillSwitch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def chrome() -> Iterator[Any]:
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
    options.add_argument("--window-size=1280,1000")
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def _go(chrome: Any, element: Any) -> None:
    """Click what loads a new page, and wait until the new page has loaded:
    the old page's window carries a mark the new one does not (a lookup made
    too early would find, then lose, an element of the old page). Errors
    while the document is being swapped are retried."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    chrome.execute_script("window.__leaving = true;")
    element.click()
    WebDriverWait(chrome, 10, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: driver.execute_script(
            "return window.__leaving === undefined && document.readyState === 'complete';"
        )
    )


def _text(chrome: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(chrome.find_element(By.TAG_NAME, "body").text)


def test_a_risk_manager_stops_a_bot_from_the_admin_after_a_confirmation(
    live_server: Any, chrome: Any, people: dict[str, Any], bot: Any, submit: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    assert submit(bot, quantity="3", price="100", order_id="o-1").status_code == 201  # resting

    # rita logs in through the admin's own form
    chrome.get(f"{live_server.url}/admin/login/?next=/admin/surveillance/killswitch/")
    chrome.find_element(By.NAME, "username").send_keys("rita")
    chrome.find_element(By.NAME, "password").send_keys("pw-rita")
    _go(chrome, chrome.find_element(By.CSS_SELECTOR, "input[type=submit]"))
    assert chrome.current_url.endswith("/admin/surveillance/killswitch/")

    def review() -> None:
        # (the admin's object tools render their links in capitals)
        activate = chrome.find_element(By.CSS_SELECTOR, "a[href$='/killswitch/activate/']")
        assert activate.text.lower() == "activate a kill switch…"
        _go(chrome, activate)
        Select(chrome.find_element(By.NAME, "scope")).select_by_value("agent")
        chrome.find_element(By.NAME, "target").send_keys("bot-1")
        chrome.find_element(By.NAME, "reason").send_keys("runaway bot")
        _go(chrome, chrome.find_element(By.CSS_SELECTOR, "input[value='Review…']"))

    # the review says what will happen, and nothing has happened yet
    review()
    page = _text(chrome)
    assert "Halt all new orders in scope agent:bot-1" in page
    assert "Resting orders the bots will be told to cancel: 1" in page
    assert not KillSwitch.objects.exists()
    # backing out stores nothing
    _go(chrome, chrome.find_element(By.CSS_SELECTOR, "a.cancel-link"))
    assert chrome.current_url.endswith("/admin/surveillance/killswitch/")
    assert not KillSwitch.objects.exists()

    # confirmed, the switch is on, recorded, and the bot's next order is refused
    review()
    _go(chrome, chrome.find_element(By.CSS_SELECTOR, "input[name=confirm]"))
    assert "Kill switch agent:bot-1 is active" in _text(chrome)
    switch = KillSwitch.objects.get(active=True)
    assert (switch.scope, switch.target, switch.activated_by) == ("agent", "bot-1", people["rita"])
    activated = Record.objects.get(seq=switch.activated_seq)
    assert activated.event_type == "KILL_SWITCH_ACTIVATED"
    refused = submit(bot, quantity="1", price="100", order_id="o-2").json()
    assert refused["decision"] == "rejected"
    assert refused["cancel_all"] is True
    assert "kill_switch" in {reason["code"] for reason in refused["reasons"]}

    # released through its own confirmation, and recorded too
    _go(chrome, chrome.find_element(By.LINK_TEXT, "Release…"))  # the active switch's row
    chrome.find_element(By.NAME, "reason").send_keys("bot fixed")
    _go(chrome, chrome.find_element(By.CSS_SELECTOR, "input[name=confirm]"))
    switch.refresh_from_db()
    assert not switch.active
    assert Record.objects.filter(event_type="KILL_SWITCH_DEACTIVATED").count() == 1
    assert submit(bot, quantity="1", price="101", order_id="o-3").json()["decision"] == "accepted"
