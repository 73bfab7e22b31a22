"""Anomaly thresholds and trading hours, read from settings when a report runs.

Defaults: cancel ratio above 0.9, error rate above 0.05, gaps above 4 hours of
trading hours (REPORTING_TRADING_HOURS, default every day around the clock,
UTC), clock drift above 1,000 us (the RTS 25 maximum divergence from UTC for
algorithmic trading other than high-frequency trading; set
REPORTING_RTS25_TOLERANCE_US to 100 for HFT)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings


@dataclass(frozen=True)
class Thresholds:
    cancel_ratio: Decimal
    error_rate: Decimal
    gap_us: int
    clock_tolerance_us: int
    trading_days: frozenset[int]  # Monday = 0
    trading_start_min: int  # minutes after 00:00 UTC
    trading_end_min: int

    @classmethod
    def current(cls) -> Thresholds:
        hours = getattr(settings, "REPORTING_TRADING_HOURS", None) or {}
        start_h, start_m = (int(x) for x in str(hours.get("start", "00:00")).split(":"))
        end_h, end_m = (int(x) for x in str(hours.get("end", "24:00")).split(":"))
        return cls(
            cancel_ratio=Decimal(str(getattr(settings, "REPORTING_CANCEL_RATIO_THRESHOLD", "0.9"))),
            error_rate=Decimal(str(getattr(settings, "REPORTING_ERROR_RATE_THRESHOLD", "0.05"))),
            gap_us=int(getattr(settings, "REPORTING_GAP_HOURS", 4)) * 3_600_000_000,
            clock_tolerance_us=int(getattr(settings, "REPORTING_RTS25_TOLERANCE_US", 1000)),
            trading_days=frozenset(hours.get("days", range(7))),
            trading_start_min=start_h * 60 + start_m,
            trading_end_min=end_h * 60 + end_m,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "cancel_ratio_above": str(self.cancel_ratio),
            "error_rate_above": str(self.error_rate),
            "gap_hours_above": self.gap_us // 3_600_000_000,
            "rts25_clock_tolerance_us": self.clock_tolerance_us,
            "trading_hours_utc": {
                "days": sorted(self.trading_days),
                "start_minute": self.trading_start_min,
                "end_minute": self.trading_end_min,
            },
        }

    def trading_us_between(self, a_us: int, b_us: int) -> int:
        """Microseconds of trading hours inside [a, b)."""
        if b_us <= a_us:
            return 0
        if (
            len(self.trading_days) == 7
            and self.trading_start_min == 0
            and self.trading_end_min >= 1440
        ):
            return b_us - a_us
        total = 0
        day_us = 86_400_000_000
        day_start = a_us - a_us % day_us
        while day_start < b_us:
            weekday = datetime.fromtimestamp(day_start // 1_000_000, UTC).weekday()
            if weekday in self.trading_days:
                lo = max(a_us, day_start + self.trading_start_min * 60_000_000)
                hi = min(b_us, day_start + self.trading_end_min * 60_000_000)
                total += max(0, hi - lo)
            day_start += day_us
        return total
