"""Decimal to text: the one way money and quantities are written, in records,
API answers, reports and admin pages alike."""

from __future__ import annotations

from decimal import Decimal


def decimal_text(value: Decimal) -> str:
    """Plain digits, never an exponent, no trailing zeros, and zero as "0"
    whatever its sign: Decimal("10.500") -> "10.5", Decimal("1E+2") -> "100",
    Decimal("-0.00") -> "0". Exact at any precision (no context rounding, unlike
    `normalize()`), and cheap: str() is a third of format()'s cost, and it only
    chooses an exponent for very large or very small values."""
    text = str(value)
    if "E" in text or "e" in text:
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        return "0"
    return text
