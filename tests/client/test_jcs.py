"""The fast canonicalization path is byte-identical to the rfc8785 reference
on every value our schemas allow, and on the edge cases where a naive
json.dumps(sort_keys=True) would differ (non-BMP keys, big integers, floats)."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance_client.jcs import CanonicalizationError, canonicalize

MAX_SAFE = 2**53 - 1

# Any Unicode text Python can encode to UTF-8 (no lone surrogates), including
# astral characters and characters in U+E000..U+FFFF that sort differently in UTF-16.
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
keys = st.one_of(
    text, st.sampled_from(["\U0001f600", "\ue000", "\uffff", "a", "é", "\u2028", "\x00"])
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-MAX_SAFE, max_value=MAX_SAFE),
    text,
    st.from_regex(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,12})?", fullmatch=True),  # decimal strings
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=2000, deadline=None)
@given(values)
def test_fast_path_is_byte_identical_to_rfc8785(value):
    reference = rfc8785.dumps(value)
    assert canonicalize(value) == reference
    # These values hold no float and no unsafe integer, which is what ingest
    # has checked before it asks to skip the walk.
    assert canonicalize(value, numbers_checked=True) == reference


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_integers_agree_or_both_refuse(number):
    try:
        expected = rfc8785.dumps({"n": number})
    except rfc8785.CanonicalizationError:
        with pytest.raises(CanonicalizationError):
            canonicalize({"n": number})
    else:
        assert canonicalize({"n": number}) == expected


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_fall_back_to_the_reference(number):
    assert canonicalize([number]) == rfc8785.dumps([number])


def test_utf16_key_order_differs_from_code_point_order():
    value = {"\ue000": 1, "\U0001f600": 2}
    # Code points put U+E000 first; UTF-16 code units put the surrogate pair first.
    assert canonicalize(value) == rfc8785.dumps(value)
    assert canonicalize(value).index("\U0001f600".encode()) < canonicalize(value).index(
        "\ue000".encode()
    )


def test_nan_is_refused():
    with pytest.raises(CanonicalizationError):
        canonicalize([float("nan")])
