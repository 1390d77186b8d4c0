from factories import make_result

from joulebot.chat.footer import energy_ratio, footer


def test_estimated_footer_says_so_and_gives_total_and_above_idle():
    text = footer(make_result(total_j=41.2, seconds=6.1, idle_w=4.74))
    energy, carbon, model = text.splitlines()
    assert energy.startswith("⚡ 41.2 ± 41 J total (12.3 ± 41 J above idle) · 6.75 W avg over 6.10 s")
    assert "estimated, no meter here: 5 W idle + 10 W per busy core" in energy
    assert "measured" not in energy
    assert "g/kWh (DE, static: Our World in Data" in carbon and "2023)" in carbon
    assert "SCI" in carbon and "/answer" in carbon
    assert carbon.startswith("🌍 ") and "CO2e (from estimated energy) ·" in carbon
    assert "/answer (from estimated energy)" in carbon
    assert model == "🤖 smollm2-135m (135M) · 48 tokens · 0.858 J/token"


def test_watts_units_show_average_power_and_duration():
    energy = footer(make_result(total_j=41.2, seconds=6.1, idle_w=4.74), units="watts").splitlines()[0]
    assert energy.startswith("⚡ 6.75 ± 6.8 W avg over 6.10 s (2.01 W above 4.74 W idle)")
    assert " J " not in energy


def test_measured_footer_names_the_meter():
    energy, carbon, _ = footer(make_result(measured=True, source="mcp39f511n")).splitlines()
    assert "measured at the wall by mcp39f511n" in energy
    assert energy.startswith("⚡ 41.2 ± 0.41 J total (12.3 ± 3.1 J above idle) · ")
    assert "estimated" not in energy + carbon and "short window" not in energy
    assert "not the whole machine" not in carbon


def test_a_short_window_is_flagged_with_its_relative_band():
    result = make_result(
        measured=True, source="nvml", scope="gpu", total_j=30.0, seconds=0.25, uncertainty_j=12.0, update_s=0.1
    )
    energy, carbon, _ = footer(result).splitlines()
    assert energy.startswith("⚡ 30.0 ± 12 J total") and "· short window: ± 40 % ·" in energy
    assert "CO2e (from CPU+GPU energy only, not the whole machine)" in carbon


def test_the_embodied_figure_says_where_it_comes_from():
    from joulebot.carbon import Embodied, carbon_for, static_intensity

    result = make_result()
    assert "embodied 8.75 mg (configured TE 181 kg)" in footer(result)
    placeholder = Embodied(te_g=181_000, lifespan_years=4, configured=False)
    result.carbon = carbon_for(41.2, 6.1, static_intensity("DE"), placeholder)
    assert "(placeholder default TE 181 kg, a laptop's: set EMBODIED_TE_KG)" in footer(result)


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
