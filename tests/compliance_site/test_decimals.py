"""compliance_site.decimals.decimal_text: the one way a decimal is written."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from compliance_site.decimals import decimal_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("10.500", "10.5"),
        ("10", "10"),
        ("100", "100"),
        ("1E+2", "100"),
        ("1.20E+5", "120000"),
        ("0.00000001", "0.00000001"),
        ("1E-8", "0.00000001"),
        ("-2.50", "-2.5"),
        ("0", "0"),
        ("0.000", "0"),
        ("0E-8", "0"),
        ("-0", "0"),
        ("-0.00", "0"),
        ("-0E+3", "0"),
        # beyond the default context's 28 digits: exact, never rounded
        ("1234567890123456789012345678.901", "1234567890123456789012345678.901"),
    ],
)
def test_writes_plain_digits_without_exponent_trailing_zeros_or_negative_zero(value, text):
    assert decimal_text(Decimal(value)) == text


def test_agrees_with_normalize_then_format_wherever_that_was_right():
    # given the form every app wrote before (format(x.normalize(), "f")), which
    # was right except for negative zero
    rng = random.Random(20)
    for _ in range(5000):
        value = Decimal(rng.randint(-(10**12), 10**12)).scaleb(rng.randint(-12, 6))
        old = format(value.normalize(), "f")
        # then the one helper writes the same text, and "0" for "-0"
        assert decimal_text(value) == ("0" if old == "-0" else old)
