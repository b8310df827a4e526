from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rigsize.errors import InputError
from rigsize.numbers import parse_count, parse_duration, parse_quantity


@pytest.mark.parametrize("text, value", [
    ("4096", 4096), ("8k", 8000), ("128K", 131072), ("300e9", 3e11), ("15T", 15e12), ("70B", 70e9),
    ("1.5m", 1.5e6), ("1M", 2**20), ("1_000", 1000), ("2,048", 2048), (" 7b ", 7e9), ("1e3", 1000),
    ("25.6k", 25600),   # vLLM docs' own examples: 1k -> 1000, 1K -> 1024, 25.6k -> 25,600
])
def test_quantities_people_write(text: str, value: float) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text, seconds", [("200ms", 0.2), ("1.5s", 1.5), ("2h", 7200), ("30", 30), ("5min", 300)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["abc", "", "8kk", "1e999", "nan", "inf", "12 apples", "--3", "0x10"])
def test_garbage_is_an_input_error(bad: str) -> None:
    with pytest.raises(InputError):
        parse_quantity(bad)


@pytest.mark.parametrize("bad", ["1.5", "-3", "0.5k1"])
def test_counts_must_be_whole_and_non_negative(bad: str) -> None:
    with pytest.raises(InputError):
        parse_count(bad)


@given(st.integers(min_value=0, max_value=10**15))
def test_plain_integers_round_trip(n: int) -> None:
    assert parse_count(str(n)) == n


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["k", "K", "M", "B", "T"]))
def test_suffix_scales(n: int, suffix: str) -> None:
    scale = {"k": 10**3, "K": 2**10, "M": 2**20, "B": 10**9, "T": 10**12}[suffix]
    assert parse_count(f"{n}{suffix}") == n * scale


def test_a_duration_that_overflows_is_refused() -> None:
    """``1e400`` parses to inf; it is refused as ``inf`` is (an infinite --tpot goal)."""
    for value in ("1e400", "1e400ms", float("inf"), float("nan")):
        with pytest.raises(InputError, match="is not a duration"):
            parse_duration(value, "--tpot")
