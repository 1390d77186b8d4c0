import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joulebot.number_format import grams, plus_minus, sig

pytestmark = pytest.mark.unit  # nothing here starts a process or opens a socket


def test_sig_figures_without_scientific_notation():
    assert sig(41.234) == "41.2"
    assert sig(0.0043123) == "0.00431"
    assert sig(12345.6) == "12346"
    assert sig(0) == "0"


@given(st.floats(min_value=1e-9, max_value=1e9, allow_nan=False))
def test_sig_round_trips_to_three_significant_figures(value):
    text = sig(value)
    assert "e" not in text
    assert math.isclose(float(text), value, rel_tol=5e-3)


def test_grams_switch_to_mg_below_a_hundredth():
    assert grams(0.0043) == "4.30 mg"
    assert grams(0.173) == "0.173 g"


def test_plus_minus_gives_two_significant_figures_or_nothing():
    assert plus_minus(0.614) == " ± 0.61"
    assert plus_minus(None) == ""
