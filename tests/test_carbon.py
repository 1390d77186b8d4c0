import pytest

from joulebot.carbon import Embodied, carbon_for, static_intensity
from joulebot.carbon.sci import SECONDS_PER_YEAR

pytestmark = pytest.mark.unit  # nothing here starts a process or opens a socket


def test_static_intensity_known_country_has_source_and_year():
    de = static_intensity("de")
    assert de.zone == "DE"
    assert de.g_per_kwh == pytest.approx(380.95)
    assert de.provenance == "static"
    assert de.year == 2023
    assert "Our World in Data" in de.source
    assert de.label() == "DE, static: Our World in Data (via CodeCarbon 3.3.2) 2023"


def test_static_intensity_subzone_uses_its_country_and_says_so():
    us = static_intensity("US-CAL-CISO")
    assert us.g_per_kwh == pytest.approx(static_intensity("US").g_per_kwh)
    assert "country average of US" in us.label()


def test_static_intensity_unknown_zone_falls_back_to_world_average():
    unknown = static_intensity("XX")
    assert unknown.g_per_kwh == pytest.approx(475.0)
    assert "world average" in unknown.label()


def test_spec_embodied_example():
    # GSF SCI spec: TE 1000 kg, EL 4 years, 1 hour reserved, whole machine → M ≈ 28.5 g
    m = Embodied(te_g=1_000_000, lifespan_years=4).share_g(3600)
    assert m == pytest.approx(28.5, abs=0.05)


def test_full_sci_example_150w_for_10s():
    # 150 W × 10 s = 1500 J at 380 g/kWh with TE 181 kg, EL 4 y → SCI ≈ 0.173 g
    intensity = static_intensity("DE").model_copy(update={"g_per_kwh": 380.0})
    carbon = carbon_for(1500.0, 10.0, intensity, Embodied(te_g=181_000, lifespan_years=4))
    assert carbon.operational_g == pytest.approx(0.1583, rel=1e-3)
    assert carbon.embodied_g == pytest.approx(181_000 * 10 / (4 * SECONDS_PER_YEAR))
    assert carbon.sci_g == pytest.approx(0.173, abs=5e-4)


def test_resource_share_scales_embodied_only():
    full = Embodied(te_g=181_000, lifespan_years=4, resource_share=1.0).share_g(10)
    half = Embodied(te_g=181_000, lifespan_years=4, resource_share=0.5).share_g(10)
    assert half == pytest.approx(full / 2)


def test_unknown_energy_gives_no_operational_or_sci_figure():
    carbon = carbon_for(None, 3.0, static_intensity("FR"), Embodied(te_g=181_000, lifespan_years=4))
    assert carbon.operational_g is None and carbon.sci_g is None
    assert carbon.embodied_g > 0
