from __future__ import annotations

import copy
from typing import Any

import pytest

from surveillance.services.config import config_update


@pytest.fixture(autouse=True)
def config_v1(db):
    """Version 1 of the config exists (and is recorded) before a test starts."""
    from surveillance.services.config import config_current

    return config_current()


@pytest.fixture
def set_config(people):
    """Change the compliance config through the service (as alice), like an
    officer would: the config in force with these fields changed."""
    from surveillance.services.config import config_current

    def apply(**changes: Any) -> dict[str, Any]:
        config = copy.deepcopy(config_current().config)
        limits = changes.pop("regulatory_limits", {})
        config.update(changes)
        config["regulatory_limits"].update(limits)
        config_update(config=config, acting_user=people["alice"])
        return config

    return apply


@pytest.fixture
def approvals_on(set_config):
    """Held orders: approval_enabled (off in a new install's config) with the
    default 5,000 threshold."""
    set_config(approval_enabled=True)


@pytest.fixture
def order_item():
    counter = {"n": 0}

    def make(
        handle, *, market="BTC-USD", side="buy", quantity="1", price=None, order_id=None, **extra
    ):
        counter["n"] += 1
        # Unless a test names a price, each order gets its own, so that the
        # duplicate-order check (on by default) does not fire by accident.
        price = price or f"100.{counter['n']:04d}"
        payload = {
            "order_id": order_id or f"o-{counter['n']}",
            "market": market,
            "side": side,
            "quantity": quantity,
            "price": price,
            "order_type": "limit",
            **extra,
        }
        return handle.signer.item("ORDER_SUBMITTED", payload)

    return make


@pytest.fixture
def submit(order_item):
    def send(handle, **kwargs):
        return handle.client.post("/api/v1/orders/", order_item(handle, **kwargs), format="json")

    return send
