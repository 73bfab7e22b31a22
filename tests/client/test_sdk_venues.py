"""Venue adapters on the venues' own documented sample messages.

The samples in tests/client/venue_samples/ are copied from the pages cited
in each test (data only). Where a test needs a message the documentation only
describes (a rejection, a cancel), it is the documented sample with the
documented fields set to documented values, and the test says so.

No Django: run alone with ``-p no:django --confcutdir=tests/client``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from compliance_client.venues import (
    ORDER_CANCELED,
    ORDER_FILLED,
    VENUE_REJECTED,
    VenueMessageError,
    iso_to_us,
    normalize,
    seconds_to_us,
)

SAMPLES = Path(__file__).parent / "venue_samples"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


# -- Binance ---------------------------------------------------------------------------
# https://developers.binance.com/docs/binance-spot-api-docs/user-data-stream (Order Update)
# https://developers.binance.com/docs/binance-spot-api-docs/faqs/market_orders_faq
# https://developers.binance.com/docs/binance-spot-api-docs/rest-api (GET /api/v3/myTrades)
# (github.com/binance/binance-spot-api-docs: user-data-stream.md,
#  faqs/market_orders_faq.md, rest-api.md)


def test_binance_new_order_report_carries_no_event():
    assert normalize("binance", sample("binance_execution_report_new.json")) == []


def test_binance_market_order_stream_gives_its_two_fills_and_the_expiry():
    events = normalize("binance", sample("binance_market_order_stream.json"))
    assert [e.event_type for e in events] == [ORDER_FILLED, ORDER_FILLED, ORDER_CANCELED]
    first, second, expired = events
    assert first.payload == {
        "order_id": "8LGC97RRgNPVQk979VIhjt",  # the client order id: what the gate saw
        "fill_id": "7",
        "quantity": "2.00000000",  # exactly as Binance wrote it
        "price": "1.00000000",
        "venue": "binance",
    }
    assert second.payload["fill_id"] == "8"
    assert first.occurred_at_us == 1719467634105 * 1000
    assert first.timestamp_precision == "ms"
    assert first.venue_order_id == "32"
    assert first.dedup_key != second.dedup_key
    assert expired.payload == {"order_id": "8LGC97RRgNPVQk979VIhjt", "reason": "expired on venue"}


def test_binance_fill_from_the_stream_and_from_a_rest_backfill_is_one_fill():
    """The myTrades sample, and the same trade as the stream reports it (the
    documented TRADE report with the trade's documented values)."""
    rest_trade = sample("binance_my_trades.json")
    stream = copy.deepcopy(sample("binance_market_order_stream.json")[1])
    stream.update(s="BNBBTC", i=100234, t=28457, l="12.00000000", L="4.00000100", T=1499865549590)
    (from_stream,) = normalize("binance", stream)
    (from_rest,) = normalize("binance", rest_trade, order_ids={"100234": "8LGC97RRgNPVQk979VIhjt"})
    assert from_rest.dedup_key == from_stream.dedup_key
    assert from_rest.payload == from_stream.payload
    assert from_rest.occurred_at_us == from_stream.occurred_at_us == 1499865549590000
    # Without the mapping the backfill names the venue's order id, and says which it is.
    (unmapped,) = normalize("binance", rest_trade)
    assert unmapped.payload["order_id"] == "100234" == unmapped.venue_order_id


def test_binance_rejection_is_a_venue_rejection():
    """The documented Order Update with x/X REJECTED and a documented reject
    reason (Order Reject Reason table)."""
    message = sample("binance_execution_report_new.json")
    message["event"].update(x="REJECTED", X="REJECTED", r="INSUFFICIENT_BALANCES")
    (event,) = normalize("binance", message)
    assert event.event_type == VENUE_REJECTED
    assert event.payload == {
        "order_id": "mUvoqJxFIILMdfAW5iGSOW",
        "reason": "rejected by Binance: INSUFFICIENT_BALANCES",
        "venue": "binance",
        "venue_code": "INSUFFICIENT_BALANCES",
    }


def test_binance_cancel_names_the_original_client_order_id():
    """On a cancel, `c` is the cancel request's id and `C` the order's."""
    message = sample("binance_execution_report_new.json")
    message["event"].update(x="CANCELED", X="CANCELED", c="cancelRequest1", C="my-order-1")
    (event,) = normalize("binance", message)
    assert event.payload == {"order_id": "my-order-1", "reason": "canceled on venue"}


# -- Coinbase Advanced Trade -------------------------------------------------------------
# https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels
# (User Channel); https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api/orders/list-fills


def test_coinbase_filled_order_update_leaves_the_fill_to_the_fills_endpoint():
    """The user channel carries no trade id: a FILLED update is no event."""
    assert normalize("coinbase", sample("coinbase_user_channel.json")) == []


def test_coinbase_fills_endpoint_gives_the_fill_with_nanosecond_iso_time_in_microseconds():
    (event,) = normalize(
        "coinbase", sample("coinbase_list_fills.json"), order_ids={"0000-000000-000000": "bot-o-1"}
    )
    assert event.event_type == ORDER_FILLED
    assert event.payload == {
        "order_id": "bot-o-1",
        "fill_id": "1111-11111-111111",
        "quantity": "0.001",
        "price": "10000.00",
        "venue": "coinbase",
    }
    assert event.occurred_at_us == iso_to_us("2021-05-31T09:59:59Z")[0] == 1622455199000000
    assert event.timestamp_precision == "ms"


def test_coinbase_same_fill_on_two_backfill_pages_is_one_fill():
    page = sample("coinbase_list_fills.json")
    again = {"fills": page["fills"] * 2}  # overlapping pages
    first, second = normalize("coinbase", again)
    assert first == second
    assert first.dedup_key == second.dedup_key


def test_coinbase_failed_order_is_a_venue_rejection_and_a_cancel_is_a_cancel():
    """The documented user-channel sample with status set to documented values
    (PENDING, OPEN, FILLED, CANCEL_QUEUED, CANCELLED, EXPIRED, FAILED)."""
    failed = sample("coinbase_user_channel.json")
    failed["events"][0]["orders"][0].update(status="FAILED", reject_reason="INSUFFICIENT_FUND")
    (event,) = normalize("coinbase", failed)
    assert event.event_type == VENUE_REJECTED
    assert event.payload["order_id"] == "XXX"
    assert event.payload["venue_code"] == "INSUFFICIENT_FUND"
    assert event.occurred_at_us == 1675974837609931  # the message's time, nanoseconds truncated
    assert event.timestamp_precision == "ns"

    canceled = sample("coinbase_user_channel.json")
    canceled["events"][0]["orders"][0].update(status="CANCELLED", cancel_reason="User requested")
    (event,) = normalize("coinbase", canceled)
    assert event.payload == {"order_id": "XXX", "reason": "canceled on venue: User requested"}


def test_coinbase_quote_sized_fill_is_refused_rather_than_guessed():
    page = sample("coinbase_list_fills.json")
    page["fills"][0]["size_in_quote"] = True
    with pytest.raises(VenueMessageError, match="quote currency"):
        normalize("coinbase", page)


# -- Kraken --------------------------------------------------------------------------------
# https://docs.kraken.com/api/docs/websocket-v1/owntrades
# https://docs.kraken.com/api/docs/websocket-v1/openorders
# https://support.kraken.com/hc/en-us/articles/360034499912-WebSocket-API-v1-Private-Feeds-ownTrades


def test_kraken_own_trade_with_seconds_timestamp_in_exact_microseconds():
    (event,) = normalize("kraken", sample("kraken_own_trades.json"))
    assert event.payload == {
        "order_id": "TDLH43-DVQXD-2KHVYY",
        "fill_id": "TDLH43-DVQXD-2KHVYY",
        "quantity": "1000000000.00000000",
        "price": "100000.00000",
        "venue": "kraken",
    }
    assert event.occurred_at_us == 1560516023070651
    assert event.timestamp_precision == "us"


def test_kraken_snapshot_replayed_on_reconnect_gives_the_same_events():
    """Each subscription replays the last 50 trades: the same fills, the same keys."""
    first = normalize("kraken", sample("kraken_own_trades_support.json"))
    replay = normalize("kraken", sample("kraken_own_trades_support.json"))
    assert [e.payload["fill_id"] for e in first] == ["T7YS4M-6HGBO-GDAGOY", "TNN4V7-BTS6X-O3CQF3"]
    assert [e.dedup_key for e in first] == [e.dedup_key for e in replay]
    assert first[1].payload["quantity"] == "0.00667447"
    assert first[0].occurred_at_us == 1570270020122169


def test_kraken_open_and_closed_orders_carry_no_event_and_a_cancel_does():
    assert normalize("kraken", sample("kraken_open_orders.json")) == []
    assert normalize("kraken", sample("kraken_open_orders_closed.json")) == []
    assert normalize("kraken", {"event": "heartbeat"}) == []
    # The documented status update with the documented fields of a cancel.
    canceled = sample("kraken_open_orders_closed.json")
    canceled[0][0]["OGTT3Y-C6I3P-XRI6HX"] = {
        "status": "canceled",
        "lastupdated": "1560516023.070651",
        "cancel_reason": "User requested",
    }
    (event,) = normalize("kraken", canceled, order_ids={"OGTT3Y-C6I3P-XRI6HX": "bot-o-9"})
    assert event.payload == {"order_id": "bot-o-9", "reason": "canceled on venue: User requested"}
    assert event.occurred_at_us == 1560516023070651


# -- ccxt ----------------------------------------------------------------------------------
# https://docs.ccxt.com/#/README?id=trade-structure
# https://docs.ccxt.com/#/README?id=order-structure (github.com/ccxt/ccxt wiki/Manual.md)


def test_ccxt_trade_structure_floats_become_the_venue_digits_and_ids_stay_readable():
    (event,) = normalize("ccxt", sample("ccxt_trade.json"))
    assert event.payload == {
        # "/" is outside the server's id alphabet: escaped, reversibly
        "order_id": "12345-67890:09876_2f54321",
        "fill_id": "12345-67890:09876_2f54321",
        "quantity": "1.5",
        "price": "0.06917684",
        "venue": "ccxt",
    }
    assert event.occurred_at_us == 1502962946216000
    assert event.timestamp_precision == "ms"
    assert event.venue_order_id == "12345-67890:09876/54321"


def test_ccxt_open_order_with_no_trades_is_no_event_and_its_trades_are_fills():
    order = sample("ccxt_order.json")
    assert normalize("ccxt", order) == []
    order["trades"] = [sample("ccxt_trade.json")]
    (event,) = normalize("ccxt", order)
    assert event.payload["order_id"] == "abcdef-ghijklmnop-qrstuvwxyz"  # the client order id
    assert event.dedup_key == normalize("ccxt", sample("ccxt_trade.json"))[0].dedup_key


def test_ccxt_rejected_order_is_a_venue_rejection_and_canceled_a_cancel():
    order = sample("ccxt_order.json")
    order["status"] = "rejected"
    (event,) = normalize("ccxt", order)
    assert event.event_type == VENUE_REJECTED
    assert event.payload == {
        "order_id": "abcdef-ghijklmnop-qrstuvwxyz",
        "reason": "rejected by the exchange",
        "venue": "ccxt",
        "venue_code": "rejected",
    }
    order["status"] = "canceled"
    (event,) = normalize("ccxt", order)
    assert event.payload == {
        "order_id": "abcdef-ghijklmnop-qrstuvwxyz",
        "reason": "canceled on venue",
    }


# -- shared rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "precision"),
    [
        ("2021-05-31T09:59:59Z", 1622455199000000, "s"),
        ("2021-05-31T09:59:59.000Z", 1622455199000000, "ms"),
        ("2023-02-09T20:33:57.609931463Z", 1675974837609931, "ns"),
        ("2021-05-31T11:59:59.5+02:00", 1622455199500000, "1 fractional digits"),
    ],
)
def test_iso_timestamps_become_utc_microseconds(text, expected, precision):
    assert iso_to_us(text) == (expected, precision)


def test_seconds_and_bad_input():
    assert seconds_to_us("1570269988.387027") == (1570269988387027, "us")
    with pytest.raises(VenueMessageError):
        seconds_to_us("soon")
    with pytest.raises(ValueError, match="unknown venue"):
        normalize("mtgox", {})
    message = sample("binance_market_order_stream.json")[1]
    with pytest.raises(VenueMessageError, match="not a plain decimal"):
        normalize("binance", {**message, "l": "1e-5"})
