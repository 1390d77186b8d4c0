import pytest
from factories import make_result

from joulebot.chat.footer import energy_ratio, footer

pytestmark = pytest.mark.unit  # nothing here starts a process or opens a socket


def test_estimated_footer_says_so_once_for_the_whole_bill():
    text = footer(make_result(total_j=41.2, seconds=6.1, idle_w=4.74))
    energy, carbon, model, label = text.splitlines()
    assert energy == "⚡ 41.2 ± 41 J total (12.3 ± 41 J above idle) · 6.75 W avg over 6.10 s"
    assert carbon == (
        "🌍 0.00436 g CO2e · 381 g/kWh (DE, static: Our World in Data (via CodeCarbon 3.3.2) 2023)"
        " · SCI 0.0131 g/answer (embodied 0.00875 g)"
    )
    assert model == "🤖 smollm2-135m (135M) · 48 tokens · 0.858 J/token"
    assert label == "📏 energy, CO2e and SCI estimated from CPU load (no meter here), not measured"
    assert text.count("estimated") == 1 and "measured at" not in text


def test_verbose_keeps_the_long_form_each_figure_with_its_caveat():
    result = make_result(total_j=41.2, seconds=6.1, idle_w=4.74)
    energy, carbon, model = footer(result, verbose=True).splitlines()
    assert energy.startswith("⚡ 41.2 ± 41 J total (12.3 ± 41 J above idle) · 6.75 W avg over 6.10 s · ")
    assert energy.endswith("estimated, no meter here: 5 W idle + 10 W per busy core")
    assert "g/kWh (DE, static: Our World in Data" in carbon and "2023)" in carbon
    assert carbon.startswith("🌍 ") and "CO2e (from estimated energy) ·" in carbon
    assert "/answer (from estimated energy)" in carbon and "embodied 0.00875 g (configured TE 181 kg)" in carbon
    assert model == footer(result).splitlines()[2]


def test_watts_units_show_average_power_and_duration():
    energy = footer(make_result(total_j=41.2, seconds=6.1, idle_w=4.74), units="watts").splitlines()[0]
    assert energy == "⚡ 6.75 ± 6.8 W avg over 6.10 s (2.01 W above 4.74 W idle)"
    verbose = footer(make_result(total_j=41.2, seconds=6.1, idle_w=4.74), units="watts", verbose=True)
    assert verbose.splitlines()[0] == energy + " · estimated, no meter here: 5 W idle + 10 W per busy core"


def test_measured_footer_names_the_meter():
    energy, carbon, _, label = footer(make_result(measured=True, source="mcp39f511n")).splitlines()
    assert label == "📏 measured at the wall by mcp39f511n"
    assert energy.startswith("⚡ 41.2 ± 0.41 J total (12.3 ± 3.1 J above idle) · ")
    assert "estimated" not in energy + carbon + label and "short window" not in energy
    assert "not the whole machine" not in carbon
    verbose = footer(make_result(measured=True, source="mcp39f511n"), verbose=True)
    assert verbose.splitlines()[0].endswith(" · measured at the wall by mcp39f511n")


def test_a_short_window_is_flagged_with_its_relative_band():
    result = make_result(
        measured=True, source="nvml", scope="gpu", total_j=30.0, seconds=0.25, uncertainty_j=12.0, update_s=0.1
    )
    text = footer(result)
    energy, _, _, label = text.splitlines()
    assert energy.startswith("⚡ 30.0 ± 12 J total") and "· short window: ± 40 % ·" in energy
    assert label.startswith("📏 measured by nvml, not the whole machine: energy, CO2e and SCI count only")
    assert text.count("not the whole machine") == 1
    assert "CO2e (from CPU+GPU energy only, not the whole machine)" in footer(result, verbose=True)


def test_a_line_of_masses_keeps_one_unit():
    """0.0212 g of CO2e beside an embodied share of 1.43 mg: both in g, not one in each unit."""
    carbon = footer(make_result(total_j=200.0, seconds=1.0)).splitlines()[1]
    assert " mg" not in carbon, carbon
    assert "0.0212 g CO2e" in carbon and "(embodied 0.00143 g)" in carbon


def test_the_embodied_placeholder_is_said_only_in_the_long_form():
    from joulebot.carbon import Embodied, carbon_for, static_intensity

    result = make_result()
    assert "embodied 0.00875 g (configured TE 181 kg)" in footer(result, verbose=True)
    placeholder = Embodied(te_g=181_000, lifespan_years=4, configured=False)
    result.carbon = carbon_for(41.2, 6.1, static_intensity("DE"), placeholder)
    assert "(placeholder default TE 181 kg, a laptop's: set EMBODIED_TE_KG)" in footer(result, verbose=True)
    assert "placeholder" not in footer(result) and "EMBODIED_TE_KG" not in footer(result)
    assert "(embodied 0.00875 g)" in footer(result)


def test_only_a_first_answer_under_the_default_zone_says_which_grid_it_used():
    from joulebot.carbon import IntensityProvider
    from joulebot.config import Settings

    zone = "🗺️ the CO2e uses DE's grid (381 g/kWh), the default: set GRID_ZONE to where the box runs (e.g. GRID_ZONE=FR)"
    unset = IntensityProvider.from_settings(Settings(_env_file=None)).current()
    first = make_result().model_copy(update={"first_answer": True})
    first.carbon = first.carbon.model_copy(update={"intensity": unset})
    assert footer(first).splitlines()[-1] == zone and footer(first, verbose=True).splitlines()[-1] == zone
    assert zone not in footer(first.model_copy(update={"first_answer": False})), "a later answer"
    for chosen in ({"grid_zone": "DE"}, {"grid_lat": 48.1, "grid_lon": 11.6}):  # the operator chose the grid
        set_here = IntensityProvider.from_settings(Settings(_env_file=None, **chosen)).current()
        assert not set_here.zone_default
        first.carbon = first.carbon.model_copy(update={"intensity": set_here})
        assert "GRID_ZONE" not in footer(first)


def test_unavailable_energy_is_never_a_number():
    text = footer(make_result(total_j=None))
    assert "energy unavailable: serial port vanished" in text
    assert "CO2e unavailable" in text
    assert "J/token" not in text


def test_history_error_is_shown():
    result = make_result()
    result.history_error = "not stored in history: OperationalError"
    assert footer(result).splitlines()[-1] == "⚠️ not stored in history: OperationalError"


def test_energy_ratio_names_the_hungrier_model():
    a = make_result(total_j=34.0, model="mistral")
    b = make_result(total_j=10.0, model="tinyllama")
    assert energy_ratio(a, b) == "⚖️ mistral (A) used 3.4× the energy of tinyllama (B)"
    assert energy_ratio(b, a) == "⚖️ mistral (B) used 3.4× the energy of tinyllama (A)"
    assert "unavailable" in energy_ratio(a, make_result(total_j=None))


def test_an_answer_ended_early_says_why_above_the_figures():
    result = make_result()
    assert footer(result).splitlines()[0].startswith("⚡ "), "a finished answer needs no note"
    cut = result.model_copy(update={"finish_reason": "length"})
    assert footer(cut).splitlines()[0] == "… cut at 256 tokens"
    shorter = cut.model_copy(update={"request": cut.request.model_copy(update={"max_tokens": 64})})
    assert footer(shorter).splitlines()[0] == "… cut at 64 tokens"
    looped = result.model_copy(update={"finish_reason": "repetition"})
    note, *figures = footer(looped).splitlines()
    assert note == "… stopped: the model was repeating itself"
    assert figures == footer(result).splitlines()
